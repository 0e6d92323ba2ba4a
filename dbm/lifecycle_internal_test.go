package dbm

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"
	"time"
)

// fakeConn records what is run on it, in order.
type fakeConn struct {
	log     []string
	pingErr error
}

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no prepare") }
func (c *fakeConn) Close() error                        { return nil }
func (c *fakeConn) Begin() (driver.Tx, error)           { c.log = append(c.log, "BEGIN"); return fakeTx{}, nil }
func (c *fakeConn) Ping(context.Context) error          { c.log = append(c.log, "ping"); return c.pingErr }
func (c *fakeConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	c.log = append(c.log, q)
	return driver.RowsAffected(0), nil
}

type fakeTx struct{}

func (fakeTx) Commit() error   { return nil }
func (fakeTx) Rollback() error { return nil }

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLifeConnOwnLifetime(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	l := newLifecycle(Config{ConnMaxLifetime: 10 * time.Second, ConnMaxLifetimeJitter: 4 * time.Second}, hooks{}, clock.now)
	l.draw = func(n int64) int64 {
		if n != int64(4*time.Second)+1 {
			t.Errorf("draw(%d), want a draw from [0, jitter]", n)
		}
		return int64(3 * time.Second)
	}
	dc, err := l.wrap(t.Context(), &fakeConn{})
	if err != nil {
		t.Fatal(err)
	}
	c := dc.(*lifeConn)
	clock.advance(6 * time.Second)
	if !c.IsValid() || c.ResetSession(t.Context()) != nil {
		t.Fatal("expired at 6s; its own lifetime is 10s - 3s")
	}
	clock.advance(time.Second)
	if c.IsValid() {
		t.Error("IsValid at 7s: want false, its lifetime is over")
	}
	if err := c.ResetSession(t.Context()); !errors.Is(err, driver.ErrBadConn) {
		t.Errorf("ResetSession at 7s = %v, want driver.ErrBadConn", err)
	}
}

func TestLifeConnIdleCheck(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	failed := 0
	l := newLifecycle(Config{ValidateIdleAfter: time.Second}, hooks{}, clock.now)
	l.checksFailed = func() { failed++ }
	fc := &fakeConn{}
	dc, _ := l.wrap(t.Context(), fc)
	c := dc.(*lifeConn)
	c.IsValid() // given back
	clock.advance(999 * time.Millisecond)
	if err := c.ResetSession(t.Context()); err != nil || len(fc.log) != 0 {
		t.Fatalf("idle 999ms: %v, ran %v; want no ping", err, fc.log)
	}
	c.IsValid()
	clock.advance(time.Second)
	fc.pingErr = errors.New("gone")
	if err := c.ResetSession(t.Context()); !errors.Is(err, driver.ErrBadConn) || len(fc.log) != 1 || failed != 1 {
		t.Errorf("idle 1s, dead: %v, ran %v, %d failed; want ErrBadConn after one ping, counted", err, fc.log, failed)
	}
}

func TestLifeConnHooksOrder(t *testing.T) {
	run := func(name string) ConnHook {
		return func(ctx context.Context, c Execer) error { _, err := c.Exec(ctx, name); return err }
	}
	l := newLifecycle(Config{}, hooks{onConnect: run("on-connect"), beforeUse: run("before"), afterRelease: run("after")}, time.Now)
	fc := &fakeConn{}
	dc, err := l.wrap(t.Context(), fc)
	if err != nil {
		t.Fatal(err)
	}
	c := dc.(*lifeConn)
	// First checkout: two statements, then given back.
	_, _ = c.ExecContext(t.Context(), "s1", nil)
	_, _ = c.ExecContext(t.Context(), "s2", nil)
	c.IsValid()
	// Second checkout: a transaction.
	_ = c.ResetSession(t.Context())
	tx, _ := c.BeginTx(t.Context(), driver.TxOptions{})
	_ = tx.Commit()
	c.IsValid()
	// Third checkout, not used: no hook.
	_ = c.ResetSession(t.Context())
	c.IsValid()
	want := []string{"on-connect", "before", "s1", "s2", "after", "BEGIN", "before", "after"}
	if len(fc.log) != len(want) {
		t.Fatalf("ran %v, want %v", fc.log, want)
	}
	for i := range want {
		if fc.log[i] != want[i] {
			t.Fatalf("ran %v, want %v", fc.log, want)
		}
	}
}
