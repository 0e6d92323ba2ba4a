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
