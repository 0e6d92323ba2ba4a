package dbm_test

// Retries against the shared PostgreSQL server: lost replies through a
// fault-injecting proxy, conflicting transactions, terminated backends and an
// exhausted pool. Tables and roles carry "i3" and a random suffix and are
// dropped at the end.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgRetryTable creates a table public.dbm_i3_<suffix> (id int, v text, no
// key, so a duplicate would show) on admin and drops it when the test ends.
func pgRetryTable(t *testing.T, admin *dbm.Manager) string {
	t.Helper()
	return pgTable(t, admin, "dbm_i3_")
}

// pgTable creates a table public.<prefix><suffix> (id int, v text, no key)
// on admin and drops it when the test ends.
func pgTable(t *testing.T, admin *dbm.Manager, prefix string) string {
	t.Helper()
	name := prefix + pgRandom(6)
	if _, err := admin.Exec(t.Context(), "CREATE TABLE "+name+" (id INT, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+name) })
	return name
}

func pgCount(t *testing.T, m *dbm.Manager, table, where string) int {
	t.Helper()
	var n int
	if err := m.Get(context.Background(), &n, "SELECT count(*) FROM "+table+" WHERE "+where); err != nil {
		t.Fatal(err)
	}
	return n
}

// fastRetries makes retries pause for no real time.
func fastRetries(m *dbm.Manager) {
	dbm.SetClockForTest(m, time.Now, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
}

// TestPostgresLostReplyWritesOnce is the proof that the manager defeats
// database/sql's hidden retry: through a proxy that forwards an INSERT,
// swallows the server's reply and drops the connection, plain database/sql
// with lib/pq inserts the row twice, the manager once (and says the outcome
// is unknown). The same proxy loses the reply to COMMIT.
func TestPostgresLostReplyWritesOnce(t *testing.T) {
	proxy, viaProxy := pgViaProxy(t)
	viaProxy.MaxOpenConns = 3
	admin := newPostgres(t)
	table := pgRetryTable(t, admin)

	t.Run("baseline: database/sql with lib/pq runs the write twice", func(t *testing.T) {
		db, err := sql.Open("postgres", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", proxy.Port(), viaProxy.User, viaProxy.Database))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		stmt := "INSERT INTO " + table + " (id, v) VALUES (1, 'plain')"
		proxy.DropReply([]byte(stmt), 1)
		_, err = db.ExecContext(t.Context(), stmt)
		n := pgCount(t, admin, table, "v = 'plain'")
		t.Logf("database/sql returned %v; rows written: %d", err, n)
		if n != 2 {
			t.Fatalf("baseline wrote %d rows, want 2: the proxy did not provoke database/sql's hidden retry", n)
		}
	})

	m, err := dbm.New(t.Context(), viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fastRetries(m)

	t.Run("manager runs the write at most once", func(t *testing.T) {
		stmt := "INSERT INTO " + table + " (id, v) VALUES (2, 'managed')"
		proxy.DropReply([]byte(stmt), 1)
		_, err := m.Exec(t.Context(), stmt)
		if !errors.Is(err, dbm.ErrConnection) || !errors.Is(err, dbm.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "outcome unknown") {
			t.Errorf("err = %v, want ErrConnection saying the outcome is unknown", err)
		}
		if n := pgCount(t, admin, table, "v = 'managed'"); n != 1 {
			t.Errorf("the manager wrote %d rows, want exactly 1 (the server ran it once; it must not run again)", n)
		}
		// The pool recovers: the next write works.
		if _, err := m.Exec(t.Context(), "INSERT INTO "+table+" (id, v) VALUES (3, 'after')"); err != nil {
			t.Errorf("next write: %v", err)
		}
	})

	t.Run("lost COMMIT reply is resolved as committed, not rerun", func(t *testing.T) {
		proxy.DropReply([]byte("COMMIT"), 1)
		runs := 0
		err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
			runs++
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, v) VALUES (4, 'tx')")
			return err
		})
		if err != nil || runs != 1 {
			t.Errorf("err = %v after %d runs, want nil after one (the server committed it)", err, runs)
		}
		if s := m.Stats(); s.LostCommitsCommitted != 1 {
			t.Errorf("Stats().LostCommitsCommitted = %d, want 1", s.LostCommitsCommitted)
		}
		if n := pgCount(t, admin, table, "v = 'tx'"); n != 1 {
			t.Errorf("%d rows from the transaction, want 1 (it committed; it must not rerun)", n)
		}
	})

	t.Run("without the check a lost COMMIT reply is ErrCommitUnknown, not rerun", func(t *testing.T) {
		unchecked, err := dbm.New(t.Context(), viaProxy, dbm.WithCommitCheck(false))
		if err != nil {
			t.Fatal(err)
		}
		defer unchecked.Close()
		proxy.DropReply([]byte("COMMIT"), 1)
		runs := 0
		err = unchecked.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
			runs++
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, v) VALUES (5, 'unchecked')")
			return err
		})
		if !errors.Is(err, dbm.ErrCommitUnknown) || runs != 1 {
			t.Errorf("err = %v after %d runs, want ErrCommitUnknown after one", err, runs)
		}
		if n := pgCount(t, admin, table, "v = 'unchecked'"); n != 1 {
			t.Errorf("%d rows from the transaction, want 1 (it committed; it must not rerun)", n)
		}
	})
}

// pgConflict runs two WithTx calls that meet at a barrier inside their first
// run, so that their transactions overlap and the server must abort one.
// A rerun waits until the other call has returned, or is rerunning itself,
// and reruns never overlap (rerunMu, held until WithTx returns): a rerun
// never meets the other transaction still open, so one rerun is enough
// however slowly the machine runs. Without that, the loser, rerun without
// pauses, could fail again against the still open winner until its
// attempts ran out.
//
// Every run registers a Tx.AfterCommit hook; pgConflict fails the test
// unless each transaction's hook ran exactly once, the committed run's: the
// hooks of the runs the server aborted must never run.
func pgConflict(t *testing.T, m *dbm.Manager, opts *sql.TxOptions, steps [2][2]string) (runs [2]int) {
	t.Helper()
	var barrier sync.WaitGroup
	barrier.Add(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	var finished, rerunning [2]chan struct{}
	for i := range 2 {
		finished[i], rerunning[i] = make(chan struct{}), make(chan struct{})
	}
	var rerunMu sync.Mutex
	var hooked [2][]int // per transaction: the runs whose AfterCommit hook ran
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(finished[i])
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			locked := false
			defer func() {
				if locked {
					rerunMu.Unlock()
				}
			}()
			errs[i] = m.WithTx(ctx, opts, func(ctx context.Context, tx *dbm.Tx) error {
				runs[i]++
				if runs[i] > 1 && !locked {
					close(rerunning[i])
					select {
					case <-finished[1-i]:
					case <-rerunning[1-i]:
					case <-ctx.Done():
						return ctx.Err()
					}
					rerunMu.Lock()
					locked = true
				}
				if _, err := tx.Exec(ctx, steps[i][0]); err != nil {
					if runs[i] == 1 {
						barrier.Done()
					}
					return err
				}
				if runs[i] == 1 {
					barrier.Done()
					barrier.Wait()
				}
				if _, err := tx.Exec(ctx, steps[i][1]); err != nil {
					return err
				}
				run := runs[i]
				return tx.AfterCommit(func() { hooked[i] = append(hooked[i], run) })
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		} else if len(hooked[i]) != 1 || hooked[i][0] != runs[i] {
			t.Errorf("transaction %d ran %d times; AfterCommit hooks ran for runs %v, want only for run %d", i, runs[i], hooked[i], runs[i])
		}
	}
	return runs
}

func TestPostgresSerializationConflictReruns(t *testing.T) {
	m := newPostgres(t)
	fastRetries(m)
	table := pgRetryTable(t, m)
	if _, err := m.Exec(t.Context(), "INSERT INTO "+table+" (id, v) VALUES (1, 'a'), (2, 'b')"); err != nil {
		t.Fatal(err)
	}
	// Each reads what the other writes: write skew, which SERIALIZABLE
	// forbids, so one of them fails with 40001.
	runs := pgConflict(t, m, &sql.TxOptions{Isolation: sql.LevelSerializable}, [2][2]string{
		{"SELECT count(*) FROM " + table + " WHERE v = 'b'", "INSERT INTO " + table + " (id, v) VALUES (10, 'a')"},
		{"SELECT count(*) FROM " + table + " WHERE v = 'a'", "INSERT INTO " + table + " (id, v) VALUES (20, 'b')"},
	})
	if runs[0]+runs[1] < 3 {
		t.Errorf("runs = %v, want one transaction rerun", runs)
	}
	if s := m.Stats(); s.Retries < 1 || s.ErrorsByClass["serialization"] < 1 {
		t.Errorf("stats: retries %d, errors %v; want a serialization failure and a rerun", s.Retries, s.ErrorsByClass)
	}
	for _, id := range []string{"10", "20"} {
		if n := pgCount(t, m, table, "id = "+id); n != 1 {
			t.Errorf("row %s committed %d times, want once", id, n)
		}
	}
}

func TestPostgresDeadlockReruns(t *testing.T) {
	m := newPostgres(t)
	fastRetries(m)
	table := pgRetryTable(t, m)
	if _, err := m.Exec(t.Context(), "INSERT INTO "+table+" (id, v) VALUES (1, '0'), (2, '0')"); err != nil {
		t.Fatal(err)
	}
	inc := func(id int) string {
		return fmt.Sprintf("UPDATE %s SET v = (v::int + 1)::text WHERE id = %d", table, id)
	}
	runs := pgConflict(t, m, nil, [2][2]string{{inc(1), inc(2)}, {inc(2), inc(1)}})
	if runs[0]+runs[1] < 3 {
		t.Errorf("runs = %v, want one transaction rerun", runs)
	}
	if s := m.Stats(); s.ErrorsByClass["deadlock"] < 1 {
		t.Errorf("errors %v; want a deadlock", s.ErrorsByClass)
	}
	var vals []string
	if err := m.ExecuteQuery(t.Context(), &vals, "SELECT v FROM "+table+" ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(vals, ",") != "2,2" {
		t.Errorf("values = %v, want 2,2 (each transaction committed exactly once)", vals)
	}
}

// pgOwnPIDs returns the backend pids of the connections opened with the
// given application_name: only the test's own manager's.
func pgOwnPIDs(t *testing.T, admin *dbm.Manager, app string) []int {
	t.Helper()
	var pids []int
	if err := admin.ExecuteQuery(context.Background(), &pids, "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app); err != nil {
		t.Fatal(err)
	}
	return pids
}

// pgTerminate terminates the backends of the connections opened with the
// given application_name, waits until they are gone, and returns how many
// there were. It signals them all at once: pg_terminate_backend's own
// timeout would wait for each in turn, polling every 100ms.
func pgTerminate(t *testing.T, admin *dbm.Manager, app string) int {
	t.Helper()
	// pg_terminate_backend in the select list, never in WHERE: the planner
	// may evaluate it there before the other conditions, on every backend.
	var backends []struct {
		PID       int  `db:"pid"`
		Signalled bool `db:"signalled"`
	}
	err := admin.ExecuteQuery(context.Background(), &backends,
		"SELECT pid, pg_terminate_backend(pid) AS signalled FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, b := range backends {
		if b.Signalled {
			pids = append(pids, b.PID)
		}
	}
	waitFor(t, "terminated backends still running", func() bool {
		var n int
		if err := admin.Get(context.Background(), &n, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", pq.Array(pids)); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	return len(pids)
}

// waitForLockWait polls until a backend with the given application_name
// is waiting for a lock.
func waitForLockWait(t *testing.T, admin *dbm.Manager, app string) {
	t.Helper()
	for range 2000 {
		var n int
		if err := admin.Get(t.Context(), &n, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the read never started waiting for the lock")
}

func TestPostgresTerminatedBackends(t *testing.T) {
	longTest(t, "terminating backends under load")
	admin := newPostgres(t)
	table := pgRetryTable(t, admin)
	m, app := newPostgresApp(t, "dbm-i3-term-", func(c *dbm.Config) { c.MaxOpenConns = 3 })
	fastRetries(m)

	// Each round kills the backend while it is running the read: the read
	// waits for a lock the admin holds, so it is certainly in flight.
	// lib/pq reports the dead connection as driver.ErrBadConn, which
	// database/sql retries on its own when the pool runs the statement. With
	// an acquire timeout too: the manager's queue bounds the wait (see
	// connQueue), and reads run on the pool, not on a connection of their
	// own (the manager's own replacement of a broken connection is tested
	// with writes and Conn in replace_conn_test.go).
	reads := func(t *testing.T, wantRetries uint64) {
		before := m.Stats().Retries
		for round := range 3 {
			lock, err := admin.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.Exec(t.Context(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				var n int
				done <- m.Get(t.Context(), &n, "SELECT count(*) FROM "+table)
			}()
			waitForLockWait(t, admin, app)
			if pgTerminate(t, admin, app) == 0 {
				t.Fatal("no backend of the manager's own to terminate")
			}
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Errorf("round %d: read whose backend was terminated: %v", round, err)
			}
		}
		if r := m.Stats().Retries - before; r < wantRetries {
			t.Errorf("Retries grew by %d, want >= %d (one per terminated read)", r, wantRetries)
		}
	}
	t.Run("reads succeed", func(t *testing.T) { reads(t, 0) })
	t.Run("reads succeed with an acquire timeout", func(t *testing.T) {
		dbm.SetRetryForTest(m, dbm.DefaultRetryMaxAttempts, time.Millisecond, time.Millisecond, time.Minute)
		defer dbm.SetRetryForTest(m, dbm.DefaultRetryMaxAttempts, time.Millisecond, time.Millisecond, 0)
		reads(t, 0)
	})

	t.Run("writes are never duplicated, acknowledged ones never lost", func(t *testing.T) {
		killer := startPgKiller(t, app, 3*time.Millisecond)
		var acked, unknown atomic.Int64
		ackedIDs := make([]bool, 200)
		for id := range 200 {
			_, err := m.Exec(t.Context(), fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, 'w')", table, id))
			switch {
			case err == nil:
				acked.Add(1)
				ackedIDs[id] = true
			case errors.Is(err, dbm.ErrOutcomeUnknown) || errors.Is(err, dbm.ErrConnection):
				unknown.Add(1)
			default:
				t.Errorf("insert %d: unexpected error %v", id, err)
			}
		}
		_, killed := killer.stop(t)
		t.Logf("acknowledged %d, outcome unknown or connection error %d, retries %d, backends terminated %d", acked.Load(), unknown.Load(), m.Stats().Retries, killed)
		var rows []struct {
			ID int `db:"id"`
			N  int `db:"n"`
		}
		if err := admin.ExecuteQuery(t.Context(), &rows, "SELECT id, count(*) AS n FROM "+table+" WHERE v = 'w' GROUP BY id"); err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for _, r := range rows {
			seen[r.ID] = r.N
			if r.N > 1 {
				t.Errorf("row %d written %d times", r.ID, r.N)
			}
		}
		for id, ok := range ackedIDs {
			if ok && seen[id] != 1 {
				t.Errorf("acknowledged row %d is missing", id)
			}
		}
	})
}

func TestPostgresPoolExhaustion(t *testing.T) {
	cfg := postgresConfig(t)
	cfg.MaxOpenConns = 1
	cfg.AcquireTimeout = 50 * time.Millisecond
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	err = m.Get(t.Context(), &n, "SELECT 1")
	if !errors.Is(err, dbm.ErrPoolTimeout) || errors.Is(err, dbm.ErrTimeout) || !strings.Contains(err.Error(), "in use 1") {
		t.Errorf("err = %v, want ErrPoolTimeout with the pool's counts", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := m.Get(t.Context(), &n, "SELECT 1"); err != nil {
		t.Errorf("after the connection is free: %v", err)
	}
}

// TestPostgresPoolExhaustionTx: with AcquireTimeout, a transaction waits for
// its connection no longer than a statement does, and a Tx, Rows or
// canceled context gives the connection it took back to the pool.
func TestPostgresPoolExhaustionTx(t *testing.T) {
	cfg := postgresConfig(t)
	cfg.MaxOpenConns = 1
	cfg.AcquireTimeout = 50 * time.Millisecond
	cfg.Params = map[string]string{"application_name": "dbm-i3b"}
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	admin := newPostgres(t) // the table outlives m, whose pool is kept for the test
	table := pgRetryTable(t, admin)
	inUse := func(what string, want int) {
		t.Helper()
		if s := m.Stats(); s.InUse != want {
			t.Errorf("%s: InUse = %d, want %d", what, s.InUse, want)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // far past AcquireTimeout
	defer cancel()

	holder, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"BeginTx": func() error { _, err := m.BeginTx(ctx, nil); return err }(),
		"WithTx":  m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil }),
		"Ping":    m.Ping(ctx),
	} {
		if !errors.Is(err, dbm.ErrPoolTimeout) || errors.Is(err, dbm.ErrTimeout) || !strings.Contains(err.Error(), "in use 1, idle 0") {
			t.Errorf("%s: err = %v, want ErrPoolTimeout with the pool's counts", what, err)
		}
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	inUse("after Rollback", 0)

	// Commit and rollback on the acquired connection.
	err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 'commit')")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	inUse("after WithTx", 0)
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES (2, 'rollback')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	inUse("after Rollback", 0)
	if n := pgCount(t, admin, table, "true"); n != 1 {
		t.Errorf("%d rows, want the committed one", n)
	}

	// A canceled context rolls the transaction back (database/sql) and
	// gives the connection back, Rollback or not: lib/pq keeps a connection
	// after a rollback, so only the manager can return it.
	cctx, ccancel := context.WithCancel(ctx)
	tx, err = m.BeginTx(cctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccancel()
	waitFor(t, "the canceled transaction's connection was not given back", func() bool { return m.Stats().InUse == 0 })
	_ = tx.Rollback()

	// A rows-returning write keeps its connection until Close, and many of
	// them leave no goroutine behind.
	rows, err := m.Query(ctx, "INSERT INTO "+table+" VALUES (3, 'returning') RETURNING id")
	if err != nil {
		t.Fatal(err)
	}
	inUse("with the rows open", 1)
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	inUse("after Close", 0)
	before := runtime.NumGoroutine()
	for i := range 200 {
		rows, err := m.Query(ctx, "INSERT INTO "+table+" VALUES ($1, 'many') RETURNING id", 100+i)
		if err != nil {
			t.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Errorf("%d goroutines after 200 queries, %d before", g, before)
	}
	inUse("after 200 queries", 0)
	if n := pgCount(t, admin, table, "v = 'many'"); n != 200 {
		t.Errorf("%d rows inserted, want 200", n)
	}
}

func TestPostgresPermissionDenied(t *testing.T) {
	admin := newPostgres(t)
	table := pgRetryTable(t, admin)
	role := "dbm_i3_norights_" + pgRandom(4)
	if _, err := admin.Exec(t.Context(), "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	cfg := postgresConfig(t)
	cfg.User = role
	cfg.MaxOpenConns = 1
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		_, _ = admin.Exec(context.Background(), "DROP ROLE "+role)
		t.Fatal(err)
	}
	t.Cleanup(func() { // after m is closed (cleanups run last-in first-out)
		if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("DROP ROLE: %v", err)
		}
	})
	t.Cleanup(func() { _ = m.Close() })
	var n int
	err = m.Get(t.Context(), &n, "SELECT count(*) FROM "+table)
	var de *dbm.Error
	if !errors.Is(err, dbm.ErrPermission) || !errors.As(err, &de) || de.Code != "42501" {
		t.Errorf("err = %v, want ErrPermission with 42501", err)
	}
	if _, err := m.Exec(t.Context(), "INSERT INTO "+table+" (id) VALUES (1)"); !errors.Is(err, dbm.ErrPermission) {
		t.Errorf("write: %v, want ErrPermission", err)
	}
}
