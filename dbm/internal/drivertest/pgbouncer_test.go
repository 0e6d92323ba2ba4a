package drivertest

// Integration tests through a real PgBouncer in transaction pooling mode
// (pgtest.StartBouncer) in front of the shared PostgreSQL server. The whole
// conformance suite also runs through it (internal/conformance).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// bouncerManager opens a manager on driver through b, with pooler as
// Config.Pooler, and closes it when the test ends.
func bouncerManager(t *testing.T, b *pgtest.Bouncer, driver, pooler string, maxOpen int) *dbm.Manager {
	t.Helper()
	cfg := dbm.Config{Driver: driver, Host: b.Host, Port: b.Port, User: "postgres", Database: "test", SSLMode: "disable", Pooler: pooler}
	cfg.MaxOpenConns = maxOpen
	cfg.Params = map[string]string{"application_name": "dbm-test-bouncer"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New through PgBouncer: %v\nPgBouncer log:\n%s", err, b.Log())
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// sharedStatements runs, from workers goroutines on m's connections at
// once, statements that differ per worker, each with an argument, and
// returns the first failure: an error, or a result that belongs to another
// worker's statement (its Bind met another client's unnamed statement).
func sharedStatements(m *dbm.Manager, workers, rounds int) error {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			query := fmt.Sprintf("SELECT CAST($1 AS BIGINT) * %d AS v", w+1)
			for i := range rounds {
				got, err := dbm.One[int64](ctx, m, query, int64(i))
				if err != nil {
					errs[w] = err
					return
				}
				if want := int64(i) * int64(w+1); got != want {
					errs[w] = fmt.Errorf("%s with %d = %d, want %d", query, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sameStatementTwice runs one statement, with an argument, on two of m's
// connections in turn: behind PgBouncer both reach the same server
// connection.
func sameStatementTwice(m *dbm.Manager) error {
	ctx := context.Background()
	c1, err := m.DB().Conn(ctx)
	if err != nil {
		return err
	}
	defer c1.Close()
	c2, err := m.DB().Conn(ctx)
	if err != nil {
		return err
	}
	defer c2.Close()
	for i := range 3 {
		for _, c := range []*sql.Conn{c1, c2} {
			var v int64
			if err := c.QueryRowContext(ctx, "SELECT CAST($1 AS BIGINT) + 1", i).Scan(&v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Behind PgBouncer in transaction mode with one server connection for many
// clients, Config.Pooler makes both PostgreSQL drivers send each statement
// in one round trip with no named prepared statement, so every answer is
// right, also when many clients' statements interleave. Without it, pgx's
// default statement cache fails at once: its named statements collide on
// the shared server connection.
func TestPgBouncerPoolerSettings(t *testing.T) {
	host, port := conformance.PostgresAddr(t)
	b := pgtest.StartBouncer(t, host, port, pgtest.BouncerConfig{PoolSize: 1})
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverPgx} {
		t.Run(driver, func(t *testing.T) {
			m := bouncerManager(t, b, driver, dbm.PoolerPgBouncer, 6)
			if err := sameStatementTwice(m); err != nil {
				t.Fatalf("one statement on two connections with Pooler %q: %v", dbm.PoolerPgBouncer, err)
			}
			if err := sharedStatements(m, 6, 100); err != nil {
				t.Fatalf("interleaved statements with Pooler %q: %v", dbm.PoolerPgBouncer, err)
			}
		})
	}
	t.Run("pgx without Pooler", func(t *testing.T) {
		m := bouncerManager(t, b, dbm.DriverPgx, "", 2)
		err := sameStatementTwice(m)
		if err == nil || !strings.Contains(err.Error(), "prepared statement") {
			t.Fatalf("pgx's statement cache behind PgBouncer: err = %v; want a prepared statement collision, which Pooler exists to avoid", err)
		}
	})
}

// With Config.Pooler set, a statement that keeps session state is refused
// before it is sent, naming what it uses; the same work scoped to a
// transaction runs.
func TestPgBouncerRefusesSessionState(t *testing.T) {
	host, port := conformance.PostgresAddr(t)
	b := pgtest.StartBouncer(t, host, port, pgtest.BouncerConfig{PoolSize: 2})
	m := bouncerManager(t, b, dbm.DriverPgx, dbm.PoolerPgBouncer, 2)
	ctx := context.Background()
	for _, q := range []string{
		"SET statement_timeout = 1000",
		"SELECT pg_advisory_lock(42)",
		"LISTEN jobs",
		"CREATE TEMP TABLE scratch (x int)",
	} {
		_, err := m.Exec(ctx, q)
		var ae *dbm.ArgumentError
		if !errors.Is(err, dbm.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Arg != "query" || !strings.Contains(err.Error(), "pgbouncer") {
			t.Errorf("Exec(%q) = %v; want an ArgumentError on query naming pgbouncer", q, err)
		}
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("after refused statements: InUse = %d, want 0", s.InUse)
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 1000"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(42)"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE scratch (x int) ON COMMIT DROP"); err != nil {
			return err
		}
		got, err := dbm.One[string](ctx, tx, "SHOW statement_timeout")
		if err == nil && got != "1s" {
			err = fmt.Errorf("SHOW statement_timeout = %q inside the transaction, want 1s", got)
		}
		return err
	})
	if err != nil {
		t.Fatalf("transaction-scoped forms through PgBouncer: %v", err)
	}
}
