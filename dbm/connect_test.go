package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
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

var registerMu sync.Mutex

func flakyManager(t *testing.T, d *flakyDriver) *Manager {
	t.Helper()
	registerMu.Lock()
	name := "dbm-flaky-" + strings.ReplaceAll(t.Name(), "/", "-")
	sql.Register(name, d)
	registerMu.Unlock()
	db, err := sql.Open(name, "")
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(sqlx.NewDb(db, name), name, defaultOptions())
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
