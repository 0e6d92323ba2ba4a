package dbm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// fakeTB records what missingServer does instead of ending the test.
type fakeTB struct {
	testing.TB
	fataled, skipped bool
	msg              string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fataled, f.msg = true, format
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, format
}

// CI relies on this: with DBM_REQUIRE_INTEGRATION=1 a missing server is a
// failure, not a skip.
func TestMissingServerFailsInCI(t *testing.T) {
	t.Setenv(requireIntegration, "1")
	f := &fakeTB{TB: t}
	missingServer(f, "PostgreSQL", errors.New("refused"))
	if !f.fataled || f.skipped {
		t.Errorf("with %s=1: fataled=%v skipped=%v, want a failure", requireIntegration, f.fataled, f.skipped)
	}
	t.Setenv(requireIntegration, "")
	f = &fakeTB{TB: t}
	missingServer(f, "PostgreSQL", errors.New("refused"))
	if f.fataled || !f.skipped || !strings.Contains(f.msg, "SKIP") {
		t.Errorf("locally: fataled=%v skipped=%v msg=%q, want a visible skip", f.fataled, f.skipped, f.msg)
	}
}

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestConnectRetriesLogNoSecrets(t *testing.T) {
	const secret = "Kx7-log-secret"
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dsn := "postgres://app:" + secret + "@127.0.0.1:" + strconv.Itoa(freePort(t)) + "/db?sslmode=disable"
	_, err := dbm.New(ctx, dbm.Config{DSN: dsn}, dbm.WithLogger(logger))
	if !errors.Is(err, dbm.ErrConnection) {
		t.Fatalf("err = %v, want ErrConnection", err)
	}
	if !strings.Contains(buf.String(), "not answering yet") {
		t.Fatalf("no retry was logged: %s", buf.String())
	}
	for what, out := range map[string]string{"log": buf.String(), "error": err.Error()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the password: %s", what, out)
		}
	}
}
