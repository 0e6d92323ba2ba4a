package dbm_test

// Config.AcquireTimeout beyond single statements: transactions and Ping wait
// for a connection at most that long, and a Tx or Rows on a connection of its
// own gives it back when it ends (or is reclaimed), with no goroutine.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// newAcquireMock is newMock with a pool of max open connections and
// AcquireTimeout 20ms.
func newAcquireMock(t *testing.T, max int) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	m, mock := newMock(t, "postgres")
	m.DB().SetMaxOpenConns(max)
	dbm.SetRetryForTest(m, 3, time.Millisecond, time.Millisecond, 20*time.Millisecond)
	return m, mock
}

func wantPoolTimeout(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, dbm.ErrPoolTimeout) || errors.Is(err, dbm.ErrTimeout) {
		t.Errorf("%s: err = %v, want ErrPoolTimeout and not ErrTimeout", what, err)
	} else if !strings.Contains(err.Error(), "in use 1, idle 0, max open 1") {
		t.Errorf("%s: message lacks the pool counts: %v", what, err)
	}
}

func TestPoolTimeoutBeginTxWithTxPing(t *testing.T) {
	m, mock := newAcquireMock(t, 1)
	mock.ExpectBegin()
	mock.ExpectRollback()
	holder, err := m.BeginTx(context.Background(), nil) // holds the only connection
	if err != nil {
		t.Fatal(err)
	}
	// The callers' own deadline is far longer than AcquireTimeout (20ms):
	// only a wait without AcquireTimeout reaches it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = m.BeginTx(ctx, nil)
	wantPoolTimeout(t, "BeginTx", err)
	runs := 0
	err = m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { runs++; return nil })
	wantPoolTimeout(t, "WithTx", err)
	if runs != 0 {
		t.Errorf("WithTx ran fn %d times without a connection", runs)
	}
	if s := m.Stats(); s.Retries != 0 {
		t.Errorf("Retries = %d: a pool timeout is not rerun", s.Retries)
	}
	wantPoolTimeout(t, "Ping", m.Ping(ctx))
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Rollback, want 0", s.InUse)
	}
	if err := m.Ping(context.Background()); err != nil {
		t.Errorf("Ping on a free pool: %v", err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Ping, want 0", s.InUse)
	}
}

func TestTxOnAcquiredConnGivesItBack(t *testing.T) {
	m, mock := newAcquireMock(t, 1)
	mock.ExpectBegin()
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mock.ExpectBegin()
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectCommit()
	ctx := context.Background()

	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE t SET n = 1"); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 1 {
		t.Errorf("InUse = %d inside the transaction, want 1", s.InUse)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Commit, want 0", s.InUse)
	}
	// With a pool of one, each of these waits for the previous connection.
	tx, err = m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Rollback, want 0", s.InUse)
	}
	if err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 || s.Commits != 2 || s.Rollbacks != 1 {
		t.Errorf("after WithTx: InUse %d, commits %d, rollbacks %d; want 0, 2, 1", s.InUse, s.Commits, s.Rollbacks)
	}
}

// waitFor polls cond, for what finishes on a goroutine of database/sql's,
// up to a generous bound that only a bug reaches.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRowsReturningWriteOwnsItsConn(t *testing.T) {
	m, mock := newMock(t, "postgres") // reads run on the pool, after their turn in the fair queue: only writes take a connection of their own
	m.DB().SetMaxOpenConns(30)
	const ins = "INSERT INTO t (n) VALUES ($1) RETURNING id"
	ctx := context.Background()

	// Held open: the connection stays with the rows until Close.
	mock.ExpectQuery(ins).WithArgs(1).WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(7))
	rows, err := m.Query(ctx, ins, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 1 {
		t.Errorf("InUse = %d with the rows open, want 1", s.InUse)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Close, want 0", s.InUse)
	}

	// Read to the end: given back then, as database/sql does on the pool.
	mock.ExpectQuery(ins).WithArgs(2).WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(8))
	rows, err = m.Query(ctx, ins, 2)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after the last row, want 0", s.InUse)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	// Many open at once: no goroutine per query.
	const n = 20
	open := make([]*dbm.Rows, 0, n)
	for i := range n {
		mock.ExpectQuery(ins).WithArgs(i).WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(i))
	}
	before := runtime.NumGoroutine()
	for i := range n {
		r, err := m.Query(ctx, ins, i)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, r)
	}
	if g := runtime.NumGoroutine(); g-before >= n/2 {
		t.Errorf("%d goroutines with %d rows open, %d before: one per query", g, n, before)
	}
	if s := m.Stats(); s.InUse != n {
		t.Errorf("InUse = %d with %d rows open", s.InUse, n)
	}
	for _, r := range open {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after closing them all, want 0", s.InUse)
	}
}

// With AcquireTimeout every Query runs on a connection of its own; the rows
// keep it while a further result set may follow.
func TestQueryWithAcquireTimeoutOwnsItsConn(t *testing.T) {
	m, mock := newAcquireMock(t, 1)
	ctx := context.Background()
	mock.ExpectQuery("SELECT 1; SELECT 2").WillReturnRows(
		sqlmock.NewRows([]string{"a"}).AddRow(1), sqlmock.NewRows([]string{"b"}).AddRow(2))
	rows, err := m.Query(ctx, "SELECT 1; SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("rows = %v, want [1 2]", got)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Close, want 0", s.InUse)
	}
	// The only connection is free again: the next query gets it.
	mock.ExpectQuery("SELECT 3").WillReturnRows(sqlmock.NewRows([]string{"c"}).AddRow(3))
	var v int
	if err := m.Get(ctx, &v, "SELECT 3"); err != nil || v != 3 {
		t.Errorf("Get = %d, %v", v, err)
	}
}

// A Tx or Rows dropped while it owns a connection gives it back when the
// leak detector reclaims it.
func TestDroppedOnAcquiredConnReclaimed(t *testing.T) {
	m, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", AcquireTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if _, err := m.Exec(ctx, "CREATE TABLE t3b (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "INSERT INTO t3b VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	dropRows(t, m, "SELECT id FROM t3b")
	dropRows(t, m, "INSERT INTO t3b VALUES (4) RETURNING id")
	dropTx(t, m)
	if s := m.Stats(); s.InUse != 3 || len(m.Leaks()) != 3 {
		t.Fatalf("InUse = %d, Leaks() = %v; want 3 of each before GC", s.InUse, m.Leaks())
	}
	m.SweepLeaksAt(time.Now().Add(time.Hour)) // what the background sweeper does after 50 ms
	gcUntil(t, "the dropped rows and transaction were not reclaimed", func() bool {
		return m.Stats().LeaksReclaimed == 3 && m.Stats().InUse == 0
	})
	if err := m.Close(); err != nil {
		t.Fatalf("Close after reclaim = %v, want nil", err)
	}
}

// A transaction on a connection the manager acquired gives it back when the
// caller's context ends, even if the caller never calls Rollback, as
// database/sql does for a transaction begun on the pool.
func TestTxOnAcquiredConnGivesItBackOnCancel(t *testing.T) {
	m := newSQLite(t)
	dbm.SetRetryForTest(m, 1, time.Millisecond, time.Millisecond, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Stats().InUse; n != 1 {
		t.Fatalf("InUse = %d with the transaction open, want 1", n)
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second) // a bound for a broken release, not a speed
	for m.Stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a cancelled transaction was not given back")
		}
		time.Sleep(time.Millisecond)
	}
	_ = tx.Rollback()
}
