// Package conformance is one behaviour suite for package dbm, run against
// every supported driver: [Run] takes a [Target] (how to reach a database
// and how its SQL dialect differs) and checks type round trips,
// JSON columns, placeholders, the query helpers, transactions, error classes
// (the caller's mistakes and a write timed out before it was sent
// included), pool settings, cancellation and LoadConfig. The targets themselves (lib/pq,
// pgx, MySQL/MariaDB, SQLite file and in-memory) are in this package's
// tests, which import the drivers; package dbm never does.
package conformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Target is one driver and database the suite runs against.
type Target struct {
	// Name is the subtest name, e.g. "postgres" or "sqlite-memory".
	Name string
	// Config returns a configuration for a database that answers. When the
	// server is not reachable it calls [MissingServer], which skips the
	// test (or fails it in CI).
	Config func(t testing.TB) dbm.Config
	// Env returns the DB_* variables from which [dbm.LoadConfig] must build
	// an equivalent, working configuration.
	Env func(t testing.TB) map[string]string
	// Dialect describes the target's SQL.
	Dialect Dialect
}

// Dialect is what differs between the targets' SQL.
type Dialect struct {
	// Placeholder returns the driver's own n-th (1-based) placeholder.
	Placeholder func(n int) string
	// Column types.
	BigInt, Double, Bool, Text, Bytes, TimestampTZ, Timestamp, Decimal string
	// JSON is the column type for JSON documents.
	JSON string
	// TableOptions follows the closing parenthesis of CREATE TABLE.
	TableOptions string
	// Epoch returns an expression giving the whole seconds since the Unix
	// epoch, as the server understands the timestamp column col.
	Epoch func(col string) string
	// Sleep is a statement that runs for seconds unless it is cancelled.
	Sleep string
	// Session is a setting that lives in a database session: Set changes
	// it, Get reads it (one string column), Want is what Get returns
	// after Set.
	Session SessionSetting
	// TryLock takes a session-level advisory lock named by its one
	// argument (a string) without waiting and returns 1 when it got it, 0
	// when another session holds it; empty when the database has none.
	TryLock string
	// NaiveKeepsWallClock: a time.Time with a zone other than UTC stored in
	// a timestamp-without-time-zone column comes back with the same wall
	// clock in UTC (the zone is dropped), rather than as the same instant.
	NaiveKeepsWallClock bool
}

// requireIntegration is the variable CI sets: with it, a target whose
// server does not answer fails instead of skipping.
const requireIntegration = "DBM_REQUIRE_INTEGRATION"

// MissingServer skips the test with a visible reason, or fails it when
// DBM_REQUIRE_INTEGRATION=1 (CI), so that CI can never pass by skipping a
// driver. It is the same rule as package dbm's tests use.
func MissingServer(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv(requireIntegration) == "1" {
		t.Fatalf("%s is required (%s=1) but not reachable: %v", what, requireIntegration, err)
		return
	}
	t.Skipf("SKIP: %s not reachable (%v); set %s=1 to make this a failure", what, err, requireIntegration)
}

// ServerAddr returns the address in the environment variables hostVar and
// portVar, or the default host and port, and skips the test (or fails it
// in CI, see [MissingServer]) when nothing answers there.
func ServerAddr(t testing.TB, what, hostVar, portVar, host string, port int) (string, int) {
	t.Helper()
	if h := os.Getenv(hostVar); h != "" {
		host = h
	}
	if p := os.Getenv(portVar); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("%s=%q: %v", portVar, p, err)
		}
		port = n
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		MissingServer(t, what+" at "+addr, err)
		return host, port
	}
	c.Close()
	return host, port
}

// PostgresAddr is the test PostgreSQL server: DBM_TEST_PG_HOST and
// DBM_TEST_PG_PORT, by default 127.0.0.1:5432.
func PostgresAddr(t testing.TB) (string, int) {
	return ServerAddr(t, "PostgreSQL", "DBM_TEST_PG_HOST", "DBM_TEST_PG_PORT", "127.0.0.1", 5432)
}

// MySQLAddr is the test MariaDB/MySQL server: DBM_TEST_MYSQL_HOST and
// DBM_TEST_MYSQL_PORT, by default 127.0.0.1:3306.
func MySQLAddr(t testing.TB) (string, int) {
	return ServerAddr(t, "MariaDB/MySQL", "DBM_TEST_MYSQL_HOST", "DBM_TEST_MYSQL_PORT", "127.0.0.1", 3306)
}

// Run runs the whole suite against tg, one subtest per behaviour.
func Run(t *testing.T, tg Target) {
	t.Helper()
	tg.Config(t) // skip (or fail in CI) once, up front, when the server is missing
	t.Run("Types", func(t *testing.T) { testTypes(t, tg) })
	t.Run("Timestamps", func(t *testing.T) { testTimestamps(t, tg) })
	t.Run("Nulls", func(t *testing.T) { testNulls(t, tg) })
	t.Run("JSON", func(t *testing.T) { testJSON(t, tg) })
	t.Run("Placeholders", func(t *testing.T) { testPlaceholders(t, tg) })
	t.Run("Rebind", func(t *testing.T) { testRebind(t, tg) })
	t.Run("INLists", func(t *testing.T) { testINLists(t, tg) })
	t.Run("Named", func(t *testing.T) { testNamed(t, tg) })
	t.Run("QueryAPI", func(t *testing.T) { testQueryAPI(t, tg) })
	t.Run("DuplicateColumns", func(t *testing.T) { testDuplicateColumns(t, tg) })
	t.Run("ScanSQLRows", func(t *testing.T) { testScanSQLRows(t, tg) })
	t.Run("WithTx", func(t *testing.T) { testWithTx(t, tg) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, tg) })
	t.Run("CallMistakes", func(t *testing.T) { testCallMistakes(t, tg) })
	t.Run("TimedOutBeforeSent", func(t *testing.T) { testTimedOutBeforeSent(t, tg) })
	t.Run("Pool", func(t *testing.T) { testPool(t, tg) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, tg) })
	t.Run("LoadConfig", func(t *testing.T) { testLoadConfig(t, tg) })
	t.Run("Conn", func(t *testing.T) { testConn(t, tg) })
	t.Run("Savepoints", func(t *testing.T) { testSavepoints(t, tg) })
	t.Run("CopyFrom", func(t *testing.T) { testCopyFrom(t, tg) })
}

// maxConns keeps every pool of the suite small: the servers are shared.
const maxConns = 4

// open returns a manager on tg, closed when the test ends. edit, if not
// nil, changes the configuration first.
func open(t *testing.T, tg Target, edit func(*dbm.Config)) *dbm.Manager {
	t.Helper()
	cfg := tg.Config(t)
	cfg.MaxOpenConns = maxConns
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

var tableSeq atomic.Int64

// table creates a table unique to this run (its name has "c5", the target
// and the process id) from the column definitions, drops it when the test
// ends and returns its name. Register it after open, so that the drop runs
// before the manager closes.
func table(t *testing.T, m *dbm.Manager, tg Target, what, columns string) string {
	t.Helper()
	tag := strings.NewReplacer("-", "", "_", "").Replace(tg.Name)
	name := fmt.Sprintf("c5_%s_%s_%d_%d", tag, what, os.Getpid(), tableSeq.Add(1))
	ctx := context.Background()
	if _, err := m.Exec(ctx, "CREATE TABLE "+name+" ("+columns+")"+tg.Dialect.TableOptions); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := m.Exec(context.Background(), "DROP TABLE "+name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return name
}

// ph returns the dialect's placeholders 1..n joined by commas.
func ph(d Dialect, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = d.Placeholder(i + 1)
	}
	return strings.Join(s, ", ")
}

// Dollar is PostgreSQL's placeholder style, $1, $2, ...
func Dollar(n int) string { return "$" + strconv.Itoa(n) }

// Question is MySQL's and SQLite's placeholder style, ? for every argument.
func Question(int) string { return "?" }

// assertIdle fails when the pool still has a connection in use: every call
// of the suite returns its connection before it returns.
func assertIdle(t *testing.T, m *dbm.Manager) {
	t.Helper()
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("Stats().InUse = %d after the calls returned, want 0 (a connection is stuck)", s.InUse)
	}
}

// SessionSetting is a setting that lives in one database session; see
// [Dialect].Session.
type SessionSetting struct{ Set, Get, Want string }
