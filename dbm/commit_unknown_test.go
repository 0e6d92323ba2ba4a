package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// gateDriver's COMMIT reports that it was sent (entered), waits for gate
// and then fails with err, like a driver whose connection dies while it
// waits for COMMIT's reply.
type gateDriver struct {
	entered, gate chan struct{}
	err           error
}

type gateConn struct{ d *gateDriver }
type gateTx struct{ d *gateDriver }

func (d *gateDriver) Open(string) (driver.Conn, error) { return gateConn{d}, nil }
func (gateConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("gateDriver: no statements")
}
func (gateConn) Close() error                { return nil }
func (c gateConn) Begin() (driver.Tx, error) { return gateTx(c), nil }
func (t gateTx) Commit() error {
	close(t.d.entered)
	<-t.d.gate
	return t.d.err
}
func (gateTx) Rollback() error { return nil }

type gateConnector struct{ d *gateDriver }

func (c gateConnector) Connect(context.Context) (driver.Conn, error) { return gateConn(c), nil }
func (c gateConnector) Driver() driver.Driver                        { return c.d }

// expiringCtx is a context whose deadline passes when expire is called, so
// no test waits for the wall clock.
type expiringCtx struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newExpiringCtx() *expiringCtx {
	return &expiringCtx{Context: context.Background(), done: make(chan struct{})}
}
func (c *expiringCtx) expire()               { c.once.Do(func() { close(c.done) }) }
func (c *expiringCtx) Done() <-chan struct{} { return c.done }
func (c *expiringCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestCommitLostAfterDeadlineIsCommitUnknown: the connection dies while
// COMMIT is under way and the caller's deadline (or cancellation) has
// passed meanwhile. The transaction may have committed, so the error must
// match ErrCommitUnknown, not only ErrTimeout, and WithTx must not rerun.
func TestCommitLostAfterDeadlineIsCommitUnknown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool // cancel the context instead of letting its deadline pass
		err    error
	}{
		{"deadline, bad conn", false, driver.ErrBadConn},
		{"deadline, driver returns the context's error", false, context.DeadlineExceeded},
		{"canceled, bad conn", true, driver.ErrBadConn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &gateDriver{entered: make(chan struct{}), gate: make(chan struct{}), err: tc.err}
			db := sql.OpenDB(gateConnector{d})
			m, err := dbm.Wrap(db, "gate")
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ectx := newExpiringCtx()
			cctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var ctx context.Context = ectx
			if tc.cancel {
				ctx = cctx
			}
			go func() {
				<-d.entered // COMMIT was sent; now the caller gives up
				ectx.expire()
				cancel()
				close(d.gate)
			}()
			runs := 0
			err = m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { runs++; return nil })
			if !errors.Is(err, dbm.ErrCommitUnknown) || !errors.Is(err, dbm.ErrOutcomeUnknown) {
				t.Errorf("err = %v (class %v); want it to match ErrCommitUnknown and ErrOutcomeUnknown", err, dbm.Classify(err))
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("err = %v; the driver's error %v is not reachable", err, tc.err)
			}
			want := dbm.ErrTimeout
			if tc.cancel {
				want = dbm.ErrCanceled
			}
			if !errors.Is(err, want) {
				t.Errorf("err = %v; want it to match %v as well: the caller's context ended", err, want)
			}
			if runs != 1 {
				t.Errorf("fn ran %d times after a lost COMMIT", runs)
			}
		})
	}
}

// gateConn's Exec reports that the statement was sent (entered), waits for
// gate and fails with err, like a driver whose connection dies while it
// waits for the reply.
func (c gateConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	close(c.d.entered)
	<-c.d.gate
	return nil, c.d.err
}

// TestWriteCutShortByTheDeadlineIsOutcomeUnknown: the caller's deadline
// passes while a write waits for its reply and the connection dies: the
// write may have run, so the error matches ErrOutcomeUnknown as well as
// ErrTimeout (and is not retried).
func TestWriteCutShortByTheDeadlineIsOutcomeUnknown(t *testing.T) {
	d := &gateDriver{entered: make(chan struct{}), gate: make(chan struct{}), err: io.ErrUnexpectedEOF}
	m, err := dbm.Wrap(sql.OpenDB(gateConnector{d}), "gate")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := newExpiringCtx()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Exec(ctx, "UPDATE t SET n = n + 1")
		errc <- err
	}()
	<-d.entered
	ctx.expire()
	close(d.gate)
	err = <-errc
	if !errors.Is(err, dbm.ErrOutcomeUnknown) || !errors.Is(err, dbm.ErrTimeout) {
		t.Fatalf("Exec = %v; want ErrOutcomeUnknown and ErrTimeout", err)
	}
	if r := m.Stats().Retries; r != 0 {
		t.Errorf("Retries = %d: a write of unknown outcome was retried", r)
	}
}

// Commit called after the context ended: database/sql does not send COMMIT
// (it rolls the transaction back), so the outcome is known: the context's
// error, not ErrCommitUnknown.
func TestCommitAfterTheContextEndedIsNotUnknown(t *testing.T) {
	d := &gateDriver{entered: make(chan struct{}), gate: make(chan struct{}), err: driver.ErrBadConn}
	defer close(d.gate) // should COMMIT reach the driver, let it fail
	m, err := dbm.Wrap(sql.OpenDB(gateConnector{d}), "gate")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel() // cancels database/sql's own context for the tx at once
	err = tx.Commit()
	if !errors.Is(err, dbm.ErrCanceled) || errors.Is(err, dbm.ErrCommitUnknown) {
		t.Fatalf("Commit after cancel = %v; want ErrCanceled and not ErrCommitUnknown", err)
	}
}
