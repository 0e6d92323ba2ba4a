package dbm_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// longTest skips a test of the long tier under go test -short: storms,
// long reliability runs, network faults that wait out timeouts. The full
// suite (make test) runs them all; pgtest.Start skips the tests with a
// throwaway server (restarts) the same way.
func longTest(t *testing.T, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: skips %s; the full suite (make test) runs it", what)
	}
}

// missingServer skips the test with a visible reason, or fails it when
// DBM_REQUIRE_INTEGRATION=1 (CI), so CI can never pass by skipping: the
// one rule, shared with the conformance suite (and tested there).
var missingServer = conformance.MissingServer

// pgAddr is the shared PostgreSQL server used by the integration tests;
// override with DBM_TEST_PG_HOST / DBM_TEST_PG_PORT.
func pgAddr() (host, port string) {
	host, port = os.Getenv("DBM_TEST_PG_HOST"), os.Getenv("DBM_TEST_PG_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	return host, port
}

// postgresConfig returns a Config for the shared test server (user postgres,
// database test, trust authentication), skipping the test when the server
// does not answer.
func postgresConfig(t testing.TB) dbm.Config {
	t.Helper()
	host, port := pgAddr()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second)
	if err != nil {
		missingServer(t, "PostgreSQL at "+net.JoinHostPort(host, port), err)
	}
	c.Close()
	p, _ := net.LookupPort("tcp", port)
	return dbm.Config{Driver: dbm.DriverPostgres, Host: host, Port: p, User: "postgres", Database: "test", SSLMode: "disable"}
}

// newPostgres opens a manager on the shared PostgreSQL server and closes it
// when the test ends.
func newPostgres(t testing.TB, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, postgresConfig(t), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// newSQLite opens a manager on a fresh in-memory SQLite database.
func newSQLite(t testing.TB, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	m, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// fmtAll formats v with every common verb, for secret-leak checks.
func fmtAll(v any) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		b.WriteString(fmt.Sprintf(verb, v))
		b.WriteByte('\n')
	}
	return b.String()
}
