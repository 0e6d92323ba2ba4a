package dbm_test

import (
	"context"
	"errors"
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

// wrapMock returns a manager over sqlmock with tracer tr.
func wrapMock(t *testing.T, tr dbm.Tracer) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, dbm.DriverPostgres, dbm.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, mock
}

// pingFullPool pings while a transaction holds the pool's only connection,
// with a 20ms acquire timeout: the ping fails with ErrPoolTimeout.
func pingFullPool(t *testing.T, m *dbm.Manager, mock sqlmock.Sqlmock) {
	t.Helper()
	ctx := context.Background()
	m.DB().SetMaxOpenConns(1)
	mock.ExpectBegin()
	mock.ExpectRollback()
	held, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dbm.SetRetryForTest(m, 1, time.Millisecond, time.Millisecond, 20*time.Millisecond)
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
