package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// fakeClock is a clock that moves only when told to, or by step on every
// reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.step)
	return now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) SetStep(d time.Duration) {
	c.mu.Lock()
	c.step = d
	c.mu.Unlock()
}

func TestSlowStatementDurationComesFromTheClock(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	var buf logBuffer
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", SlowQueryThreshold: 2 * time.Second},
		dbm.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), dbm.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	clock.SetStep(time.Second) // every statement "takes" 1s: under the threshold
	if _, err := m.Exec(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "slow statement") {
		t.Fatalf("a 1s statement was logged with a 2s threshold: %s", buf.String())
	}
	clock.SetStep(3 * time.Second)
	var vs []string
	if err := m.ExecuteQuery(ctx, &vs, "SELECT   v FROM t WHERE v = ?", "arg-value-8"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"level=WARN", `msg="dbm: slow statement"`, "op=query", "duration=3s", `statement="SELECT v FROM t WHERE v = ?"`, "rows=0"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "arg-value-8") {
		t.Errorf("log holds an argument value: %s", out)
	}
	if s := m.Stats(); s.SlowStatements != 1 {
		t.Errorf("SlowStatements = %d, want 1", s.SlowStatements)
	}
}

// makeWait makes one statement wait for the only connection: a transaction
// holds it until a goroutine's statement is seen waiting in the pool's
// statistics, then lets go.
func makeWait(t *testing.T, m *dbm.Manager) {
	t.Helper()
	ctx := context.Background()
	before := m.Stats().WaitCount
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Exec(ctx, "SELECT 1")
		done <- err
	}()
	for m.Stats().WaitCount == before {
		time.Sleep(time.Millisecond) // polls for an event; no timing assumption
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPoolSaturationIsLoggedOncePerInterval(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	var buf logBuffer
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 1},
		dbm.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), dbm.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const msg = "dbm: pool saturated"
	count := func() int { return strings.Count(buf.String(), msg) }

	exec := func() {
		t.Helper()
		if _, err := m.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}

	exec() // the first check: no waits yet
	makeWait(t, m)
	exec()
	if count() != 0 {
		t.Fatalf("warned within the interval of the first check: %s", buf.String())
	}

	clock.Advance(dbm.PoolWarnInterval)
	exec()
	if count() != 1 || !strings.Contains(buf.String(), "waits=1") || !strings.Contains(buf.String(), "max_open_conns=1") {
		t.Fatalf("want one warning with waits=1 once the interval passed: %s", buf.String())
	}

	makeWait(t, m)
	makeWait(t, m)
	exec()
	if count() != 1 {
		t.Fatalf("warned again within the interval: %s", buf.String())
	}

	clock.Advance(dbm.PoolWarnInterval)
	exec()
	if count() != 2 || !strings.Contains(buf.String(), "waits=2") {
		t.Fatalf("want a second warning counting the 2 waits since the first: %s", buf.String())
	}

	clock.Advance(dbm.PoolWarnInterval)
	exec()
	if count() != 2 {
		t.Fatalf("warned with no new waits: %s", buf.String())
	}
}

func TestPoolSaturationIsNotWatchedWithoutLogger(t *testing.T) {
	// Without WithLogger the manager never reads the clock for the pool:
	// a clock that fails the test proves it.
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 1},
		dbm.WithClock(func() time.Time { t.Error("clock read with no logger, tracer or threshold"); return time.Time{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	makeWait(t, m)
}

// event is what the recording tracer saw.
type event struct {
	phase string // "start" or "end"
	op    dbm.TraceOp
	res   dbm.TraceResult
	span  string // the span id found in the context
}

type spanKey struct{}

// recorder is a Tracer that gives each operation a span id in the context
// and records what it is told, like an OpenTelemetry bridge would.
type recorder struct {
	mu     sync.Mutex
	events []event
	n      int
}

func (r *recorder) Start(ctx context.Context, op dbm.TraceOp) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	parent, _ := ctx.Value(spanKey{}).(string)
	id := parent + "/" + op.Name + string(rune('0'+r.n))
	r.events = append(r.events, event{phase: "start", op: op, span: id})
	return context.WithValue(ctx, spanKey{}, id)
}

func (r *recorder) End(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, _ := ctx.Value(spanKey{}).(string)
	r.events = append(r.events, event{phase: "end", op: op, res: res, span: id})
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events, r.n = nil, 0
	return ev
}

func newTracedMock(t *testing.T, clock *fakeClock) (*dbm.Manager, sqlmock.Sqlmock, *recorder) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := dbm.Wrap(db, dbm.DriverPostgres, dbm.WithTracer(rec), dbm.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("sqlmock: %v", err)
		}
		_ = m.Close()
	})
	return m, mock, rec
}

func TestTracerSeesStatements(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.SetStep(5 * time.Millisecond)
	m, mock, rec := newTracedMock(t, clock)

	mock.ExpectQuery("SELECT id FROM t WHERE a = $1").WithArgs("secret-arg").
		WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(1).AddRow(2))
	ids, err := dbm.Select[int](ctx, m, "SELECT id FROM t WHERE a = ?", "secret-arg")
	if err != nil || len(ids) != 2 {
		t.Fatalf("Select = %v, %v", ids, err)
	}
	ev := rec.take()
	if len(ev) != 2 || ev[0].phase != "start" || ev[1].phase != "end" {
		t.Fatalf("events = %+v", ev)
	}
	wantOp := dbm.TraceOp{Name: dbm.TraceQuery, Statement: "SELECT id FROM t WHERE a = $1", Attempt: 1}
	if ev[0].op != wantOp || ev[1].op != wantOp {
		t.Errorf("ops = %+v, %+v; want %+v", ev[0].op, ev[1].op, wantOp)
	}
	if r := ev[1].res; r.Rows != 2 || r.Err != nil || r.Duration != 5*time.Millisecond {
		t.Errorf("result = %+v; want 2 rows, no error, 5ms", r)
	}
	if ev[1].span != "/query1" {
		t.Errorf("End got span %q, want the one Start returned", ev[1].span)
	}

	mock.ExpectExec("INSERT INTO t VALUES ($1)").WillReturnError(errors.New("boom"))
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (?)", 1); err == nil {
		t.Fatal("want an error")
	}
	ev = rec.take()
	if len(ev) != 2 || ev[1].op.Name != dbm.TraceExec || ev[1].res.Err == nil || ev[1].res.Class != dbm.ClassUnknown || ev[1].res.Rows != -1 {
		t.Errorf("exec events = %+v", ev)
	}
	var dbErr *dbm.Error
	if len(ev) == 2 && !errors.As(ev[1].res.Err, &dbErr) {
		t.Errorf("the tracer should see the classified error the caller gets, got %T", ev[1].res.Err)
	}

	mock.ExpectQuery("SELECT * FROM nope").WillReturnError(sql.ErrNoRows)
	if _, err := m.Query(ctx, "SELECT * FROM nope"); !errors.Is(err, dbm.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if ev = rec.take(); len(ev) != 2 || ev[1].res.Class != dbm.ClassNotFound {
		t.Errorf("query error events = %+v; want class not_found", ev)
	}
}

func TestTracerSeesTransactions(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, mock, rec := newTracedMock(t, clock)

	mock.ExpectBegin()
	mock.ExpectExec("UPDATE t SET a = 1").WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if id, _ := ctx.Value(spanKey{}).(string); id != "/tx1" {
			t.Errorf("fn's context carries span %q, want the transaction's", id)
		}
		_, err := tx.Exec(ctx, "UPDATE t SET a = 1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.take()
	var got []string
	for _, e := range ev {
		got = append(got, e.phase+" "+e.op.Name+" "+e.span)
	}
	want := []string{"start tx /tx1", "start exec /tx1/exec2", "end exec /tx1/exec2", "end tx /tx1"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %q, want %q", got, want)
	}
	if !ev[1].op.InTx || ev[3].res.Committed != true || ev[3].res.Err != nil || ev[3].res.Rows != -1 {
		t.Errorf("events = %+v", ev)
	}

	// A rolled back transaction ends once, not committed; a second Rollback
	// does not end it again.
	mock.ExpectBegin()
	mock.ExpectRollback()
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	_ = tx.Rollback()
	if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Commit after Rollback = %v", err)
	}
	ev = rec.take()
	if len(ev) != 2 || ev[1].op.Name != dbm.TraceTx || ev[1].res.Committed {
		t.Errorf("rollback events = %+v", ev)
	}

	// A failed BEGIN ends the span with the error.
	mock.ExpectBegin().WillReturnError(errors.New("no begin"))
	if _, err := m.BeginTx(ctx, nil); err == nil {
		t.Fatal("want an error")
	}
	ev = rec.take()
	if len(ev) != 2 || ev[1].res.Err == nil || ev[1].res.Committed {
		t.Errorf("failed begin events = %+v", ev)
	}

	// A failed COMMIT too.
	mock.ExpectBegin()
	mock.ExpectCommit().WillReturnError(errors.New("no commit"))
	if err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil }); err == nil {
		t.Fatal("want an error")
	}
	ev = rec.take()
	if len(ev) != 2 || ev[1].res.Err == nil || ev[1].res.Committed {
		t.Errorf("failed commit events = %+v", ev)
	}
}

// acquireRecorder is a recorder that also implements dbm.AcquireTracer.
type acquireRecorder struct {
	recorder
	acquires []event
}

func (r *acquireRecorder) TraceAcquire(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	r.note(&r.acquires, event{phase: "acquire", op: op, res: res})
}

// note appends e to list under the recorder's lock.
func (r *recorder) note(list *[]event, e event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*list = append(*list, e)
}

func TestAcquireTracerSeesConnectionWaits(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.SetStep(3 * time.Millisecond)
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	rec := &acquireRecorder{}
	m, err := dbm.Wrap(db, dbm.DriverPostgres, dbm.WithTracer(rec), dbm.WithClock(clock.Now), dbm.WithAcquireTimeout(dbm.NoAcquireTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// A write takes a connection of its own: one acquire, then the exec.
	mock.ExpectExec("INSERT INTO t VALUES ($1)").WithArgs(1).WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (?)", 1); err != nil {
		t.Fatal(err)
	}
	if len(rec.acquires) != 1 {
		t.Fatalf("acquire events = %+v, want one", rec.acquires)
	}
	a := rec.acquires[0]
	if a.op.Name != dbm.TraceExec || a.op.Statement != "INSERT INTO t VALUES ($1)" || a.res.Err != nil || a.res.Duration != 3*time.Millisecond {
		t.Errorf("acquire event = %+v; want exec, the statement, no error, 3ms", a)
	}

	// Without an acquire timeout, a read and an Idempotent write run on the
	// pool: database/sql takes the connection, and the tracer is not told.
	// A read marked NotIdempotent is a write: it takes its own.
	mock.ExpectExec("UPDATE t SET n = 5").WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectQuery("SELECT 1").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
	mock.ExpectQuery("SELECT f()").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
	if _, err := m.Exec(dbm.Idempotent(ctx), "UPDATE t SET n = 5"); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := m.Get(ctx, &one, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if len(rec.acquires) != 1 {
		t.Errorf("acquire events = %+v; want none for a read or an Idempotent write", rec.acquires[1:])
	}
	if err := m.Get(dbm.NotIdempotent(ctx), &one, "SELECT f()"); err != nil {
		t.Fatal(err)
	}
	if len(rec.acquires) != 2 || rec.acquires[1].op.Statement != "SELECT f()" {
		t.Errorf("acquire events = %+v; want one more, for the NotIdempotent read", rec.acquires)
	}

	// A pool that stays full: the wait ends in ErrPoolTimeout, and the
	// tracer is told so.
	pingFullPool(t, m, mock)
	last := rec.acquires[len(rec.acquires)-1]
	if last.op.Name != "ping" || !errors.Is(last.res.Err, dbm.ErrPoolTimeout) || last.res.Class != dbm.ClassPoolTimeout {
		t.Errorf("last acquire event = %+v; want ping ending in ErrPoolTimeout", last)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// Each run of a rerun WithTx is its own transaction span, numbered.
func TestTracerNumbersWithTxReruns(t *testing.T) {
	ctx := context.Background()
	m, mock, rec := newTracedMock(t, newFakeClock())
	dbm.SetClockForTest(m, time.Now, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
	mock.ExpectBegin()
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectCommit()
	runs := 0
	err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error {
		if runs++; runs == 1 {
			return &dbm.Error{Class: dbm.ClassSerialization, Err: errors.New("could not serialize access")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.take() {
		if e.op.Name == dbm.TraceTx {
			got = append(got, fmt.Sprintf("%s %d", e.phase, e.op.Attempt))
		}
	}
	if want := "start 1,end 1,start 2,end 2"; strings.Join(got, ",") != want {
		t.Errorf("tx events = %q, want %q", got, want)
	}
}
