package dbm_test

// Connections that died while they sat idle in the pool, as after a server
// restart or a failover: every one of them is broken, and the server is fine.

import (
	"context"
	"database/sql"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestPostgresStaleIdleConnections fills the pool with idle connections,
// terminates their backends, and then runs one read, one BeginTx and one
// Ping: each must succeed on a new connection, however many dead ones the
// pool holds. database/sql does that on its own pool path (it takes another
// connection on driver.ErrBadConn, the last time a new one); with
// AcquireTimeout the manager runs them on a connection of its own, where
// database/sql does not, so the manager must replace broken connections
// itself: three tries, one per retry attempt, would each meet a dead
// connection and the read would fail although the server is up.
func TestPostgresStaleIdleConnections(t *testing.T) {
	longTest(t, "a reliability run that terminates backends")
	const pool = 5 // more dead connections than attempts, and than the 3 tries database/sql makes
	admin := newPostgres(t)
	for _, path := range managerPaths {
		t.Run(path.name, func(t *testing.T) {
			m, app := newPostgresApp(t, "dbm-rel-stale-", func(c *dbm.Config) { c.MaxOpenConns, c.AcquireTimeout = pool, path.acquire })
			fastRetries(m)

			// staleAll leaves the pool with `pool` idle connections whose
			// backends are gone.
			staleAll := func(t *testing.T) {
				t.Helper()
				pgFillPool(t, m, pool)
				// Some may be dead already: the broken ones the last step
				// did not need to try are still in the pool.
				pgTerminate(t, admin, app)
				if pids := pgOwnPIDs(t, admin, app); len(pids) != 0 {
					t.Fatalf("backends %v still running", pids)
				}
			}
			for what, run := range map[string]func(ctx context.Context) error{
				"Get": func(ctx context.Context) error {
					var n int
					return m.Get(ctx, &n, "SELECT 1")
				},
				"BeginTx": func(ctx context.Context) error {
					tx, err := m.BeginTx(ctx, nil)
					if err == nil {
						err = tx.Rollback()
					}
					return err
				},
				"Ping": m.Ping,
			} {
				// A few rounds: lib/pq reports a dead connection either as
				// driver.ErrBadConn or as the reset it met, whichever
				// comes first.
				for round := range 3 {
					staleAll(t)
					if err := run(t.Context()); err != nil {
						t.Errorf("%s, round %d, with %d dead idle connections and a working server: %v", what, round, pool, err)
					}
				}
			}
			if s := m.Stats(); s.InUse != 0 {
				t.Errorf("Stats().InUse = %d, want 0", s.InUse)
			}
		})
	}
}

// pgFillPool leaves n idle connections in m's pool (whose size must be at
// least n): it takes n at once and gives them back.
func pgFillPool(t *testing.T, m *dbm.Manager, n int) {
	t.Helper()
	conns := make([]*sql.Conn, 0, n)
	for range n {
		c, err := m.DB().Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	if s := m.Stats(); s.Idle != n {
		t.Fatalf("%d idle connections, want %d", s.Idle, n)
	}
}
