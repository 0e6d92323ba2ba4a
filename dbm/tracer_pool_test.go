package dbm_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// waitRecorder also implements dbm.AcquireStartTracer: it records the start
// of each wait next to its end, in one list.
type waitRecorder struct {
	acquireRecorder
}

func (r *waitRecorder) TraceAcquireStart(ctx context.Context, op dbm.TraceOp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acquires = append(r.acquires, event{phase: "wait", op: op})
}

// wrapMock returns a manager over sqlmock with tracer tr (and opts).
func wrapMock(t *testing.T, tr dbm.Tracer, opts ...dbm.Option) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, dbm.DriverPostgres, append([]dbm.Option{dbm.WithTracer(tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, mock
}

// pingFullPool pings while a transaction holds the pool's only connection,
// with a 20ms acquire timeout: the ping fails with ErrPoolTimeout. The
// timeout is set before the transaction begins, as a manager has it from
// Wrap: a manager without a queue (no bound, NoAcquireTimeout) gets one
// with it, and the transaction holds the queue's permit.
func pingFullPool(t *testing.T, m *dbm.Manager, mock sqlmock.Sqlmock) {
	t.Helper()
	ctx := context.Background()
	m.DB().SetMaxOpenConns(1)
	dbm.SetRetryForTest(m, 1, time.Millisecond, time.Millisecond, 20*time.Millisecond)
	mock.ExpectBegin()
	mock.ExpectRollback()
	held, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(ctx); !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("Ping on a full pool = %v, want ErrPoolTimeout", err)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
}

// TestAcquireStartTracerBracketsEachWait: every acquisition the
// AcquireTracer hears of is preceded by a TraceAcquireStart with the same
// op, a failed one (pool timeout) included, so that starts minus ends is
// the number of callers waiting.
func TestAcquireStartTracerBracketsEachWait(t *testing.T) {
	rec := &waitRecorder{}
	m, mock := wrapMock(t, rec)
	mock.ExpectExec("INSERT INTO t VALUES ($1)").WithArgs(1).WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(context.Background(), "INSERT INTO t VALUES (?)", 1); err != nil {
		t.Fatal(err)
	}
	pingFullPool(t, m, mock)
	// With the default AcquireTimeout the BEGIN of the held transaction
	// takes its connection through the manager too.
	want := []struct{ phase, name string }{{"wait", "exec"}, {"acquire", "exec"}, {"wait", "begin"}, {"acquire", "begin"}, {"wait", "ping"}, {"acquire", "ping"}}
	if len(rec.acquires) != len(want) {
		t.Fatalf("events = %+v, want %v", rec.acquires, want)
	}
	for i, w := range want {
		if e := rec.acquires[i]; e.phase != w.phase || e.op.Name != w.name {
			t.Errorf("event %d = %s %s, want %s %s", i, e.phase, e.op.Name, w.phase, w.name)
		}
		// With the default AcquireTimeout an unbounded pool has a fair
		// queue too, which tells whether a caller waited: the exec and
		// the BEGIN found a permit free, the ping waited for the held
		// one. (Without a queue Waited was always true.)
		if e := rec.acquires[i]; e.phase == "acquire" && e.res.Waited != (w.name == "ping") {
			t.Errorf("event %d (%s): Waited %v, want %v", i, e.op.Name, e.res.Waited, w.name == "ping")
		}
	}
	if s := rec.acquires[0].op.Statement; s != "INSERT INTO t VALUES ($1)" {
		t.Errorf("wait op statement = %q", s)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// TestAcquireStartTracerNeedsAcquireTracer: a tracer with only
// TraceAcquireStart is not told about waits it could never see end.
func TestAcquireStartTracerNeedsAcquireTracer(t *testing.T) {
	rec := &startOnly{}
	m, mock := wrapMock(t, rec)
	mock.ExpectExec("DELETE FROM t").WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(context.Background(), "DELETE FROM t"); err != nil {
		t.Fatal(err)
	}
	if rec.waits != 0 {
		t.Errorf("TraceAcquireStart called %d times without AcquireTracer", rec.waits)
	}
}

type startOnly struct {
	recorder
	waits int
}

func (r *startOnly) TraceAcquireStart(context.Context, dbm.TraceOp) { r.waits++ }

// releaseRecorder also implements dbm.ReleaseTracer.
type releaseRecorder struct {
	acquireRecorder
	releases []event
}

func (r *releaseRecorder) TraceRelease(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	r.note(&r.releases, event{phase: "release", op: op, res: res})
}

// released returns the op names of the releases so far.
func (r *releaseRecorder) released() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, e := range r.releases {
		names = append(names, e.op.Name)
	}
	return names
}

// TestReleaseTracerOncePerAcquire: every connection the AcquireTracer saw
// taken is reported given back exactly once, when it goes back: after a
// statement, when its Rows are closed (not before, and once however often
// Close is called) or read to their end, when a transaction ends, when a Conn is closed, after a
// ping. A wait that ended without a connection (pool timeout) has no
// release. The duration is the fake clock's time between the two.
func TestReleaseTracerOncePerAcquire(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.SetStep(3 * time.Millisecond)
	rec := &releaseRecorder{}
	m, mock := wrapMock(t, rec, dbm.WithClock(clock.Now))
	want := []string{}
	check := func(step string) {
		t.Helper()
		if got := rec.released(); !slices.Equal(got, want) {
			t.Fatalf("after %s: releases %v, want %v", step, got, want)
		}
	}

	mock.ExpectExec("INSERT INTO t VALUES ($1)").WithArgs(1).WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (?)", 1); err != nil {
		t.Fatal(err)
	}
	want = append(want, "exec")
	check("Exec")

	mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1).AddRow(2))
	rows, err := m.Query(dbm.NotIdempotent(ctx), "SELECT n FROM t") // a write: a connection of its own
	if err != nil {
		t.Fatal(err)
	}
	check("Query, rows open") // the rows hold the connection
	_ = rows.Close()
	_ = rows.Close()
	want = append(want, "query")
	check("Rows.Close twice")

	// Rows read to their end give the connection back then, before Close.
	mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
	rows, err = m.Query(dbm.NotIdempotent(ctx), "SELECT n FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	want = append(want, "query")
	check("reading the rows to their end")
	_ = rows.Close()
	check("Rows.Close after the end")

	mock.ExpectBegin()
	mock.ExpectCommit()
	if err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want = append(want, "begin")
	check("WithTx")

	pingFullPool(t, m, mock) // begin, a ping that times out, rollback
	want = append(want, "begin")
	check("a pool timeout")

	if err := m.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, "ping")
	check("Ping")

	// Last: a Conn's connection is closed, and sqlmock has only one.
	c, err := m.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("Conn, open")
	_ = c.Close()
	want = append(want, "conn")
	check("Conn.Close")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, e := range rec.releases {
		if e.res.Duration <= 0 || e.res.Err != nil {
			t.Errorf("release %d (%s): duration %v, err %v; want the time held, no error", i, e.op.Name, e.res.Duration, e.res.Err)
		}
	}
	if s := rec.releases[0].op.Statement; s != "INSERT INTO t VALUES ($1)" {
		t.Errorf("release op statement = %q, want the acquire's", s)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// TestReleaseTracerOnCloseWithLeaks: rows left open when the manager closes
// are ended by Close, and their connection's release is reported too.
func TestReleaseTracerOnCloseWithLeaks(t *testing.T) {
	rec := &releaseRecorder{}
	m, mock := wrapMock(t, rec)
	mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1).AddRow(2))
	rows, err := m.Query(dbm.NotIdempotent(context.Background()), "SELECT n FROM t")
	if err != nil {
		t.Fatal(err)
	}
	_ = rows // left open
	if got := rec.released(); len(got) != 0 {
		t.Fatalf("releases %v while the rows are open", got)
	}
	if err := m.Close(); !errors.Is(err, dbm.ErrLeaked) {
		t.Fatalf("Close = %v, want ErrLeaked", err)
	}
	if got := rec.released(); !slices.Equal(got, []string{"query"}) {
		t.Errorf("releases after Close %v, want [query]", got)
	}
}

// TestAcquireTracerWaited: TraceResult.Waited tells a call that found a
// connection free at once (false) from one that waited its turn (true),
// for both ways the manager takes a connection: the queue alone (BEGIN, a
// ping) and a write's connection of its own.
func TestAcquireTracerWaited(t *testing.T) {
	ctx := context.Background()
	rec := &acquireRecorder{}
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // a bound when wrapped: the manager's queue
	m, err := dbm.Wrap(db, dbm.DriverPostgres, dbm.WithTracer(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// waitBehind runs call while a transaction holds the only connection,
	// and releases it once call waits in the queue.
	waitBehind := func(call func() error) {
		t.Helper()
		mock.ExpectBegin()
		mock.ExpectRollback()
		held, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- call() }()
		for end := time.Now().Add(time.Minute); m.Stats().QueueLength == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("the call never waited in the queue")
			}
		}
		if err := held.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitBehind(func() error {
		mock.ExpectExec("DELETE FROM t").WillReturnResult(sqlmock.NewResult(0, 1))
		_, err := m.Exec(ctx, "DELETE FROM t")
		return err
	})
	if err := m.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	waitBehind(func() error { return m.Ping(ctx) })

	want := []struct {
		name   string
		waited bool
	}{{"begin", false}, {"exec", true}, {"ping", false}, {"begin", false}, {"ping", true}}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.acquires) != len(want) {
		t.Fatalf("acquires %+v, want %v", rec.acquires, want)
	}
	for i, w := range want {
		if e := rec.acquires[i]; e.op.Name != w.name || e.res.Waited != w.waited {
			t.Errorf("acquire %d = %s waited %v, want %s waited %v", i, e.op.Name, e.res.Waited, w.name, w.waited)
		}
		// A turn had at once is no wait: 0, without reading the clock
		// again; a wait lasts until the holder gave the connection back.
		if e := rec.acquires[i]; (e.res.Duration == 0) == w.waited {
			t.Errorf("acquire %d (%s, waited %v): duration %v", i, e.op.Name, w.waited, e.res.Duration)
		}
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
