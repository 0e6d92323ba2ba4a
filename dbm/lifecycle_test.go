package dbm_test

// The connection lifecycle (lifecycle.go, lifecycle_warm.go) on PostgreSQL
// and MariaDB: per-connection lifetime jitter, MinIdleConns, validation of
// an idle connection, and the OnConnect, BeforeUse and AfterRelease hooks.

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// lcServer is one server the lifecycle tests run on.
type lcServer struct {
	name string
	cfg  func(t *testing.T) dbm.Config
	// backendID is the statement that names the connection's session, and
	// kill the one that ends a session by that id (run on another
	// connection); param is the driver's placeholder.
	backendID, kill string
	// alive counts the sessions with a given id: 0 once kill took effect.
	alive string
	// setVar sets the per-checkout variable to the one argument, unsetVar
	// clears it, getVar reads it ("" when unset).
	setVar, unsetVar, getVar string
}

var lcServers = []lcServer{
	{
		name: "PostgreSQL",
		cfg: func(t *testing.T) dbm.Config {
			cfg := postgresConfig(t)
			cfg.Params = map[string]string{"application_name": "dbm-lifecycle-" + pgRandom(6)}
			return cfg
		},
		backendID: "SELECT pg_backend_pid()", kill: "SELECT pg_terminate_backend(?)",
		alive:  "SELECT count(*) FROM pg_stat_activity WHERE pid = ?",
		setVar: "SELECT set_config('app.tenant', $1, false)", unsetVar: "RESET app.tenant",
		getVar: "SELECT coalesce(current_setting('app.tenant', true), '')",
	},
	{
		name: "MariaDB",
		cfg: func(t *testing.T) dbm.Config {
			const addr = "127.0.0.1:3306"
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
				missingServer(t, "MariaDB at "+addr, err)
			} else {
				c.Close()
			}
			return dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Database: "test"}
		},
		backendID: "SELECT CONNECTION_ID()", kill: "KILL ?",
		alive:  "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
		setVar: "SET @dbm_lifecycle_tenant = ?", unsetVar: "SET @dbm_lifecycle_tenant = NULL",
		getVar: "SELECT coalesce(@dbm_lifecycle_tenant, '')",
	},
}

// lcNew opens a manager on srv with cfg edited and opts, closed when the
// test ends.
func lcNew(t *testing.T, cfg dbm.Config, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// births records when each connection was made, from an OnConnect hook.
type births struct {
	mu sync.Mutex
	at []time.Time
}

func (b *births) hook(context.Context, dbm.Execer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.at = append(b.at, time.Now())
	return nil
}

func (b *births) times() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.at)
}

func spread(ts []time.Time) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	lo, hi := slices.MinFunc(ts, time.Time.Compare), slices.MaxFunc(ts, time.Time.Compare)
	return hi.Sub(lo)
}

// churn checks out all n connections of the pool at once, gives them
// back, and does so again every 10ms for d: every connection is handed out
// again in every round as it ages, so each is replaced within a round of
// its own lifetime's end (a lifeConn past it fails ResetSession at hand-out).
// Workers running statements on their own would not do that: database/sql
// hands out the connection given back last, so on a loaded machine, where
// few statements overlap, most connections could sit idle past their
// deadline and be replaced together when demand rose.
func churn(t *testing.T, m *dbm.Manager, n int, d time.Duration) {
	t.Helper()
	ctx := t.Context()
	held := make([]*sql.Conn, n)
	for end := time.Now().Add(d); ; {
		var wg sync.WaitGroup
		for i := range held {
			wg.Go(func() {
				c, err := m.DB().Conn(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				held[i] = c
			})
		}
		wg.Wait() // all n are out at once
		for i, c := range held {
			if c != nil {
				_ = c.Close()
				held[i] = nil
			}
		}
		if t.Failed() || !time.Now().Before(end) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLifetimeJitterSpreadsReconnects: 8 connections opened at once with a
// lifetime of 2s and a jitter of 1.5s are replaced at different times
// (each after 0.5s-2s), not all at once: the replacements' births, and on
// PostgreSQL the backend_start of the manager's sessions, spread out, and
// the first comes before 2s (without jitter none can: a busy machine only
// delays replacements, so that check cannot pass by timing; the bound is
// 2s, not the 0.7s expected, so that such a delay cannot fail it either). With
// NoLifetimeJitter (logged, not asserted: it depends on timing) they come
// within tens of milliseconds of each other on a quiet machine.
func TestLifetimeJitterSpreadsReconnects(t *testing.T) {
	longTest(t, "3s of connection churn per server")
	const n = 8
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			run := func(jitter time.Duration) (replaced, backends, first time.Duration, count int) {
				cfg := srv.cfg(t)
				cfg.MaxOpenConns, cfg.MaxIdleConns = n, n
				cfg.ConnMaxLifetime, cfg.ConnMaxLifetimeJitter = 2*time.Second, jitter
				var b births
				hook := b.hook
				var tbl string
				if srv.name == "PostgreSQL" {
					// Each new session writes down its own backend_start,
					// so that the spread is the server's view of every
					// reconnect, not of the sessions that happen to be open
					// when the churn ends (a snapshot that a loaded
					// machine's batched replacements could make narrow).
					tbl = "lc_births_" + pgRandom(6)
					admin := lcNew(t, srv.cfg(t))
					if _, err := admin.Exec(t.Context(), "CREATE TABLE "+tbl+" (started timestamptz NOT NULL)"); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP TABLE "+tbl) })
					hook = func(ctx context.Context, c dbm.Execer) error {
						if _, err := c.Exec(ctx, "INSERT INTO "+tbl+" SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"); err != nil {
							return err
						}
						return b.hook(ctx, c)
					}
				}
				m := lcNew(t, cfg, dbm.WithOnConnect(hook))
				churn(t, m, n, 2500*time.Millisecond)
				all := b.times()
				if len(all) <= n {
					t.Fatalf("%d connections made in all: none of the first %d was replaced", len(all), n)
				}
				second := all[n:min(len(all), 2*n)]
				// From the first birth: every connection lives from its own
				// birth, so without jitter none is replaced before 2s.
				first = slices.MinFunc(second, time.Time.Compare).Sub(slices.MinFunc(all[:n], time.Time.Compare))
				if srv.name == "PostgreSQL" {
					// The sessions that replaced the first n, by the
					// server's clock.
					var starts []time.Time
					if err := m.ExecuteQuery(t.Context(), &starts, "SELECT started FROM "+tbl+" ORDER BY started OFFSET ? LIMIT ?", n, n); err != nil {
						t.Fatal(err)
					}
					backends = spread(starts)
				}
				_ = m.Close()
				return spread(second), backends, first, len(second)
			}
			replaced, backends, first, count := run(1500 * time.Millisecond)
			t.Logf("figure: %s, lifetime 2s, jitter 1.5s: first replacement after %v, %d replacements spread over %v%s", srv.name, first.Round(time.Millisecond), count, replaced.Round(time.Millisecond), backendNote(backends))
			// Without jitter no connection can be replaced before 2s after
			// the first birth; with it the first lifetime ends after about
			// 0.7s on average (the least of 8 draws in 0.5s-2s), which
			// leaves a loaded machine more than a second to notice it.
			if first >= 2*time.Second {
				t.Errorf("the first connection was replaced %v after the pool opened, want < 2s (lifetimes 0.5s-2s; without jitter none is replaced before 2s)", first)
			}
			if replaced < 300*time.Millisecond {
				t.Errorf("the first replacements came within %v of each other, want them spread (>= 300ms)", replaced)
			}
			if srv.name == "PostgreSQL" && backends < 300*time.Millisecond {
				t.Errorf("backend_start of the manager's sessions spread over %v, want >= 300ms", backends)
			}
			replaced, backends, first, count = run(dbm.NoLifetimeJitter)
			t.Logf("figure: %s, lifetime 2s, no jitter: first replacement after %v, %d replacements spread over %v%s", srv.name, first.Round(time.Millisecond), count, replaced.Round(time.Millisecond), backendNote(backends))
		})
	}
}

// TestMinIdleConnsKeptWarm: with MinIdleConns 3 the pool holds 3 idle
// connections soon after New (which made one), and again after they were
// closed for idling; Close stops the goroutine that keeps them (the test
// fails on a goroutine left behind).
func TestMinIdleConnsKeptWarm(t *testing.T) {
	defer dbm.SetWarmEveryForTest(20 * time.Millisecond)()
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			noGoroutineLeft(t)
			cfg := srv.cfg(t)
			cfg.MaxOpenConns, cfg.MaxIdleConns, cfg.MinIdleConns = 5, 4, 3
			m := lcNew(t, cfg)
			waitFor(t, "the pool never held 3 idle connections", func() bool { return m.Stats().Idle >= 3 })
			if srv.name == "PostgreSQL" {
				var n int
				if err := m.Get(t.Context(), &n, "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", cfg.Params["application_name"]); err != nil {
					t.Fatal(err)
				}
				if n < 3 {
					t.Errorf("%d sessions of the manager on the server, want >= 3", n)
				}
			}
			// The pool drops its idle connections (as ConnMaxIdleTime
			// would); the warmer opens them again.
			m.DB().SetMaxIdleConns(0)
			m.DB().SetMaxIdleConns(4)
			waitFor(t, "the pool was not warmed again", func() bool { return m.Stats().Idle >= 3 })
		})
	}
}

func TestMinIdleConnsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  dbm.Config
		want string
	}{
		{"above MaxIdleConns", dbm.Config{MaxOpenConns: 5, MaxIdleConns: 2, MinIdleConns: 3}, "MinIdleConns (DB_MIN_IDLE_CONNS)"},
		{"above MaxOpenConns", dbm.Config{MaxOpenConns: 2, MinIdleConns: 3}, "MinIdleConns (DB_MIN_IDLE_CONNS)"},
		{"negative", dbm.Config{MinIdleConns: -1}, "MinIdleConns (DB_MIN_IDLE_CONNS)"},
		{"jitter not below the lifetime", dbm.Config{ConnMaxLifetime: time.Second, ConnMaxLifetimeJitter: time.Second}, "ConnMaxLifetimeJitter (DB_CONN_MAX_LIFETIME_JITTER)"},
		{"negative jitter", dbm.Config{ConnMaxLifetimeJitter: -time.Second}, "ConnMaxLifetimeJitter (DB_CONN_MAX_LIFETIME_JITTER)"},
		{"negative idle validation", dbm.Config{ValidateIdleAfter: -time.Second}, "ValidateIdleAfter (DB_VALIDATE_IDLE_AFTER)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Driver, tc.cfg.Database = dbm.DriverSQLite, ":memory:"
			m, err := dbm.New(t.Context(), tc.cfg)
			if err == nil {
				m.Close()
			}
			if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrConfig naming %s", err, tc.want)
			}
		})
	}
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv("DB_DRIVER", "sqlite")
		t.Setenv("DB_NAME", ":memory:")
		t.Setenv("DB_MAX_OPEN_CONNS", "2")
		t.Setenv("DB_MIN_IDLE_CONNS", "3")
		cfg, err := dbm.LoadConfig()
		if err == nil {
			var m *dbm.Manager
			if m, err = dbm.New(t.Context(), cfg); err == nil {
				m.Close()
			}
		}
		if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), "DB_MIN_IDLE_CONNS") {
			t.Errorf("err = %v, want ErrConfig naming DB_MIN_IDLE_CONNS", err)
		}
	})
}

// TestValidateIdleAfterReplacesDeadConn: the server ends the session of an
// idle pooled connection; with ValidateIdleAfter the next checkout pings
// it, finds it dead and hands out a new one, so a statement on a
// [sql.Conn] (which database/sql never retries) works. Without it, the
// statement fails. go-sql-driver/mysql checks a pooled connection's socket
// itself (checkConnLiveness, on by default), which sees this closed
// socket; the test turns that off to see the manager's check.
func TestValidateIdleAfterReplacesDeadConn(t *testing.T) {
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			admin := lcNew(t, srv.cfg(t))
			run := func(validate time.Duration) (failed uint64, err error) {
				cfg := srv.cfg(t)
				cfg.MaxOpenConns, cfg.ValidateIdleAfter = 1, validate
				if cfg.Driver == dbm.DriverMySQL {
					cfg.Params = map[string]string{"checkConnLiveness": "false"}
				}
				m := lcNew(t, cfg)
				ctx := t.Context()
				var id int64
				if err := m.Get(ctx, &id, srv.backendID); err != nil {
					t.Fatal(err)
				}
				if _, err := admin.Exec(ctx, srv.kill, id); err != nil {
					t.Fatal(err)
				}
				// Idle past the threshold, and the server done with the
				// session (however long a loaded machine takes to end it).
				time.Sleep(100 * time.Millisecond)
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					var n int
					if err := admin.Get(ctx, &n, srv.alive, id); err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("session %d still there 30s after %s", id, srv.kill)
					}
				}
				c, err := m.DB().Conn(ctx)
				if err != nil {
					return m.Stats().IdleChecksFailed, err
				}
				defer c.Close()
				var again int64
				err = c.QueryRowContext(ctx, m.Rebind(srv.backendID)).Scan(&again)
				if err == nil && again == id {
					t.Errorf("the statement ran on the killed session %d", id)
				}
				return m.Stats().IdleChecksFailed, err
			}
			if failed, err := run(50 * time.Millisecond); err != nil || failed != 1 {
				t.Errorf("with ValidateIdleAfter: err = %v, IdleChecksFailed = %d; want nil, 1", err, failed)
			}
			if _, err := run(0); err == nil {
				t.Errorf("without ValidateIdleAfter the statement on the killed connection worked: the test does not test the check")
			}
		})
	}
}

// backendNote reports the spread of backend_start, measured on PostgreSQL
// only.
func backendNote(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return "; backend_start spread " + d.Round(time.Millisecond).String()
}
