package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// flakyDriver fails the first `fail` connection attempts with err, then
// hands out connections whose Ping succeeds.
type flakyDriver struct {
	fail     int32
	err      error
	attempts atomic.Int32
}

type flakyConn struct{ driver.Conn }

func (c flakyConn) Ping(context.Context) error { return nil }
func (c flakyConn) Close() error               { return nil }

func (d *flakyDriver) Open(string) (driver.Conn, error) {
	if d.attempts.Add(1) <= d.fail {
		return nil, d.err
	}
	return flakyConn{}, nil
}

// Connect implements driver.Connector, so tests open the fake through
// sql.OpenDB and never register a driver name (which would panic when the
// test runs twice in one process, as with -count=2).
func (d *flakyDriver) Connect(context.Context) (driver.Conn, error) { return d.Open("") }
func (d *flakyDriver) Driver() driver.Driver                        { return d }

func flakyManager(t *testing.T, d *flakyDriver) *Manager {
	t.Helper()
	m := newManager(sqlx.NewDb(sql.OpenDB(d), "flaky"), wrapConfig("flaky"), defaultOptions(), nil)
	m.addr = "db.example:5432"
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func TestConnectWaitsForAStartingDatabase(t *testing.T) {
	d := &flakyDriver{fail: 3, err: refused()}
	m := flakyManager(t, d)
	if err := m.connect(context.Background(), time.Minute); err != nil {
		t.Fatalf("connect = %v, want success once the database answers", err)
	}
	if n := d.attempts.Load(); n != 4 {
		t.Errorf("attempts = %d, want 4 (3 refused, then success)", n)
	}
}

func TestConnectGivesUpAtTheDeadline(t *testing.T) {
	d := &flakyDriver{fail: 1 << 30, err: refused()}
	m := flakyManager(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := m.connect(ctx, time.Minute)
	if !errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "db.example:5432") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want ErrConnection naming the address and the server's reason", err)
	}
	if n := d.attempts.Load(); n < 2 {
		t.Errorf("attempts = %d, want retries before the deadline", n)
	}
}

func TestConnectUsesConnectTimeoutWithoutDeadline(t *testing.T) {
	d := &flakyDriver{fail: 1 << 30, err: refused()}
	m := flakyManager(t, d)
	err := m.connect(context.Background(), 100*time.Millisecond)
	if !errors.Is(err, ErrConnection) {
		t.Errorf("err = %v, want ErrConnection after ConnectTimeout", err)
	}
}

func TestConnectStopsOnPermanentErrors(t *testing.T) {
	d := &flakyDriver{fail: 1 << 30, err: &stateErr{"28P01", "password authentication failed"}}
	m := flakyManager(t, d)
	err := m.connect(context.Background(), time.Minute)
	if !errors.Is(err, ErrConnection) || !errors.Is(err, ErrPermission) {
		t.Errorf("err = %v, want ErrConnection and ErrPermission", err)
	}
	if n := d.attempts.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1: a wrong password does not get better", n)
	}
}

func TestConnectHonoursALongerCallerDeadline(t *testing.T) {
	// Three refusals take at least 25/2+50/2+100/2 ms of backoff, longer
	// than the 1ms ConnectTimeout; the caller's deadline is what counts.
	d := &flakyDriver{fail: 3, err: refused()}
	m := flakyManager(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.connect(ctx, time.Millisecond); err != nil {
		t.Errorf("connect = %v, want success within the caller's deadline", err)
	}
}

func TestConnectRetriesTooManyConnections(t *testing.T) {
	d := &flakyDriver{fail: 2, err: &stateErr{"53300", "sorry, too many clients already"}}
	m := flakyManager(t, d)
	if err := m.connect(context.Background(), time.Minute); err != nil {
		t.Errorf("connect = %v, want success after the server frees a slot", err)
	}
}

func TestConnectBacksOff(t *testing.T) {
	d := &flakyDriver{fail: 1 << 30, err: refused()}
	m := flakyManager(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = m.connect(ctx, time.Minute)
	// With a backoff starting at 12.5ms and doubling, 300ms allow at most
	// about 6 attempts however fast the machine is; a loop without backoff
	// makes thousands.
	if n := d.attempts.Load(); n > 20 {
		t.Errorf("%d attempts in 300ms: the connect loop does not back off", n)
	}
}
