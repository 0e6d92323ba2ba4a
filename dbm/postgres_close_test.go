package dbm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgOpenApp opens admin, a manager on a schema of its own (see pgOpen) with
// a table "touched", and m, a second manager on that schema under an
// application_name of its own, app, which pg_stat_activity shows, with the
// defaults of Config but MaxOpenConns. The test closes m; the cleanup only
// makes sure.
func pgOpenApp(t *testing.T, maxOpen int) (admin, m *dbm.Manager, app string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin = pgOpen(t)
	if _, err := admin.Exec(ctx, "CREATE TABLE touched (id INT)"); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := admin.Get(ctx, &schema, "SELECT current_schema()"); err != nil {
		t.Fatal(err)
	}
	app = "dbm-test-" + pgRandom(6)
	cfg := postgresConfig(t)
	cfg.MaxOpenConns = maxOpen
	// lock_timeout: a session of m blocked by a bug fails its test after a
	// while instead of hanging it.
	cfg.Params = map[string]string{"search_path": schema, "application_name": app, "lock_timeout": "60s"}
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return admin, m, app
}

// pgSessions counts the server sessions of application app, and those of
// them idle in a transaction.
func pgSessions(t *testing.T, admin *dbm.Manager, app string) (all, idleInTx int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n struct {
		All      int `db:"all_"`
		IdleInTx int `db:"idle_in_tx"`
	}
	err := admin.Get(ctx, &n, `SELECT count(*) AS all_, count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_tx
		FROM pg_stat_activity WHERE application_name = ?`, app)
	if err != nil {
		t.Fatal(err)
	}
	return n.All, n.IdleInTx
}

// pgDropWithin drops table from admin's side with a lock_timeout, so that a
// lock still held by another session fails the test instead of hanging it.
func pgDropWithin(t *testing.T, admin *dbm.Manager, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := admin.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DROP TABLE "+table)
		return err
	})
	if err != nil {
		t.Fatalf("DROP TABLE %s from another session: %v (a session of the closed manager still holds its lock)", table, err)
	}
}

//go:noinline
func dropTxAfterInsert(t *testing.T, m *dbm.Manager, id int) {
	tx, err := m.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "INSERT INTO touched (id) VALUES (?)", id); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresReclaimOnWaitLeakedTx: a pool of two, both connections held by
// transactions that inserted a row and were dropped; the third call, with
// context.Background() and the default settings, gets a connection because
// the manager reclaims the dropped transactions while it waits. They are
// rolled back, never committed: the rows are not there, and no session is
// left idle in a transaction.
func TestPostgresReclaimOnWaitLeakedTx(t *testing.T) {
	admin, m, app := pgOpenApp(t, 2)
	ctx := context.Background()
	noNaturalGC(t)
	dropTxAfterInsert(t, m, 1)
	dropTxAfterInsert(t, m, 2)
	if _, idle := pgSessions(t, admin, app); idle != 2 {
		t.Fatalf("%d sessions idle in transaction after dropping two; want 2", idle)
	}
	var n int
	if err := m.Get(ctx, &n, "SELECT count(*) FROM touched"); err != nil {
		t.Fatalf("third call: %v (the dropped transactions were not reclaimed while it waited)", err)
	}
	gcUntil(t, "the second dropped transaction was not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 2 })
	if s := m.Stats(); s.LeakCollections == 0 || s.Rollbacks != 2 || s.Commits != 0 {
		t.Errorf("LeakCollections = %d, Rollbacks = %d, Commits = %d; want > 0, 2, 0", s.LeakCollections, s.Rollbacks, s.Commits)
	}
	if err := admin.Get(ctx, &n, "SELECT count(*) FROM touched"); err != nil || n != 0 {
		t.Errorf("rows of the dropped transactions: %d, %v; want 0 (rolled back)", n, err)
	}
	if _, idle := pgSessions(t, admin, app); idle != 0 {
		t.Errorf("%d sessions idle in transaction after the reclaim; want 0", idle)
	}
	pgDropWithin(t, admin, "touched")
}

// TestPostgresCloseLeavesNoSession: Close with a transaction that wrote
// (and has rows open), and rows open on the pool, lists them in ErrLeaked,
// rolls back and closes them, and leaves no server session of the manager:
// none idle in a transaction, none at all shortly after, and the table the
// transaction touched can be dropped at once from another session.
func TestPostgresCloseLeavesNoSession(t *testing.T) {
	admin, m, app := pgOpenApp(t, 4)
	ctx := context.Background()
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO touched (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	txRows, err := tx.Query(ctx, "SELECT id FROM touched")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := m.Query(ctx, "SELECT generate_series(1, 100000)") // more than one network read
	if err != nil {
		t.Fatal(err)
	}
	if all, idle := pgSessions(t, admin, app); all != 2 || idle != 1 {
		t.Fatalf("before Close: %d sessions, %d idle in transaction; want 2 and 1", all, idle)
	}
	err = m.Close()
	var le *dbm.LeakError
	if !errors.Is(err, dbm.ErrLeaked) || !errors.As(err, &le) || len(le.Leaks) != 3 {
		t.Fatalf("Close = %v; want ErrLeaked listing the transaction and two rows", err)
	}
	if _, idle := pgSessions(t, admin, app); idle != 0 {
		t.Errorf("after Close: %d sessions idle in transaction; want 0", idle)
	}
	// A backend ends shortly after its client's Terminate message; wait
	// for that, with a bound only a session left open reaches.
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, _ := pgSessions(t, admin, app)
		if all == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after Close: %d server sessions of the manager remain; want 0", all)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := admin.Get(ctx, &n, "SELECT count(*) FROM touched"); err != nil || n != 0 {
		t.Errorf("rows of the transaction Close ended: %d, %v; want 0 (rolled back)", n, err)
	}
	pgDropWithin(t, admin, "touched")
	// The wrappers the program still holds fail cleanly.
	if rows.Next() || txRows.Next() {
		t.Error("Next on rows Close ended = true")
	}
	if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Commit after Close = %v; want ErrClosed", err)
	}
	_ = rows.Close()
}

// TestPostgresCloseDoesNotWaitOnItself: rows whose reader is blocked on a
// row lock that a transaction left open holds. Close must roll that
// transaction back while it closes the rows; ended one after the other
// (rows first), the rows would wait for the lock forever. The sessions'
// lock_timeout (60s, see pgOpenApp) bounds the wait of a broken Close, so
// the test fails instead of hanging.
func TestPostgresCloseDoesNotWaitOnItself(t *testing.T) {
	admin, m, app := pgOpenApp(t, 4)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "INSERT INTO touched SELECT generate_series(1, 20000)"); err != nil {
		t.Fatal(err)
	}
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE touched SET id = id WHERE id = 20000"); err != nil { // locks the last row
		t.Fatal(err)
	}
	rows, err := m.Query(ctx, "SELECT id FROM touched FOR UPDATE") // streams until the locked row
	if err != nil {
		t.Fatal(err)
	}
	reading := make(chan error, 1)
	go func() {
		for rows.Next() {
		}
		reading <- rows.Err()
	}()
	// Wait until the reader is blocked on the lock, as the server sees it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := admin.Get(ctx, &waiting, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE NOT l.granted AND a.application_name = ?`, app); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never waited for the row lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if !errors.Is(err, dbm.ErrLeaked) {
			t.Errorf("Close = %v; want ErrLeaked", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Close did not return within 90s: it waits for rows blocked on a lock of a transaction it has not rolled back yet")
	}
	if waited := time.Since(start); waited > 50*time.Second {
		t.Errorf("Close took %v: it waited for the lock timeout, not for the rollback", waited)
	}
	<-reading
}
