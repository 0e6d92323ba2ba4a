package dbm

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
	"github.com/dbmanager-go/dbmanager/dbm/internal/testsrv"
)

// The prober's patience rule, on a fake clock: the clock moves only when
// the test moves it, so a verdict that depends on how long a caller has
// waited is the same however loaded the machine is. The timers of admit are
// real; they only make a caller look at the clock again.

// lockedClock is a clock the test moves by hand while the prober's
// goroutines read it.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeProbe is what one probe's connection attempt does: whether the
// connection is made and the server sends bytes on it, and the attempt's
// outcome, once the test sends it on end.
type fakeProbe struct {
	connect, answer bool
	end             chan error
}

// scriptedProber is a prober whose probes follow the script, one
// fakeProbe per probe (a probe past the end of the script fails at once);
// begun receives each probe's number once it has connected and answered as
// scripted.
func scriptedProber(t *testing.T, clk *lockedClock, script ...fakeProbe) (p *prober, begun chan int) {
	t.Helper()
	begun = make(chan int, len(script)+1)
	var n int
	dial := func(ctx context.Context) error {
		n++
		if n > len(script) {
			return errors.New("test: no more probes in the script")
		}
		s := script[n-1]
		if w := dialwatch.From(ctx); w != nil {
			if s.connect {
				w.Connected()
			}
			if s.answer {
				w.Answered()
			}
		}
		begun <- n
		select {
		case err := <-s.end:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p = newProber(dial, true, 30*time.Second)
	p.now = clk.now
	// A connection took 10s lately: the patience of the old rule, twice
	// that, would keep callers waiting past their deadline.
	p.tookToConnect(10 * time.Second)
	t.Cleanup(p.close) // ends a probe still under way
	return p, begun
}

var (
	refusedErr  = &dialError{err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	timedOutErr = &dialError{err: context.DeadlineExceeded, timeout: time.Second, timedOut: true}
)

// admitted is the outcome of one call of admit.
type admitted struct {
	dd     *databaseDown
	ctxErr error // the call's context's error when admit returned
}

// admitOne calls p.admit with a context that ends after a long while, once
// p's database is down, and returns once the call is waiting for a
// verdict.
func admitOne(t *testing.T, p *prober) <-chan admitted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	out := make(chan admitted, 1)
	go func() {
		defer cancel()
		dd := p.admit(ctx)
		out <- admitted{dd, ctx.Err()}
	}()
	for {
		p.mu.Lock()
		waiting := p.verdict != nil
		p.mu.Unlock()
		if waiting {
			return out
		}
		select {
		case r := <-out:
			out <- r // decided without waiting: the test looks
			return out
		case <-time.After(time.Millisecond):
		}
	}
}

// TestProbeBlackHolePatience: the database went down by a connection
// attempt that timed out, and the probe under way has a connection (a
// proxy or a hung server accepted it) on which nothing comes: a caller
// fails once downWait has passed since it arrived, while the probe is
// still in the hole, not when its own context ends (the old patience,
// twice a recent connect time, was 20s here).
func TestProbeBlackHolePatience(t *testing.T) {
	clk := &lockedClock{t: time.Unix(1000, 0)}
	p, begun := scriptedProber(t, clk, fakeProbe{connect: true, end: make(chan error)})
	p.dialed(timedOutErr, false, 0)
	<-begun
	res := admitOne(t, p)
	clk.advance(downWait)
	r := <-res
	if r.dd == nil {
		t.Fatal("admit = nil with the database in a black hole, want it down")
	}
	if r.ctxErr != nil {
		t.Errorf("the call failed when its context ended (%v), not by the patience rule", r.ctxErr)
	}
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if !running {
		t.Error("the probe in the hole had ended: the call waited for it, not downWait")
	}
}

// TestProbeServerThere: while the server is there, a caller waits for the
// probe's verdict however long it takes (a server busy starting forks a
// process per connection, which took 17-180ms under load), and gets
// through when the probe does: the probe's connection is made after the
// server refused the one before (it is starting again), or the server has
// sent bytes on it; or the server answered the probe before with an error
// ("the database system is starting up") that ended after the call
// arrived, and the next probe's connection is made.
func TestProbeServerThere(t *testing.T) {
	for _, tc := range []struct {
		name    string
		downBy  error // the failure that marked the database down
		answers bool  // the server sends bytes on the probe's connection
	}{
		{"connected after a refusal", refusedErr, false},
		{"bytes from the server", timedOutErr, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &lockedClock{t: time.Unix(1000, 0)}
			probe := fakeProbe{connect: true, answer: tc.answers, end: make(chan error)}
			p, begun := scriptedProber(t, clk, probe)
			p.dialed(tc.downBy, false, 0)
			<-begun
			res := admitOne(t, p)
			clk.advance(time.Second)
			time.Sleep(30 * time.Millisecond) // a caller on downWait would look at the clock again
			probe.end <- nil
			if r := <-res; r.dd != nil {
				t.Errorf("admit = %v, want nil: the probe got through", r.dd)
			}
		})
	}
	t.Run("starting up, then up", func(t *testing.T) {
		clk := &lockedClock{t: time.Unix(1000, 0)}
		starting := fakeProbe{connect: true, answer: true, end: make(chan error)}
		up := fakeProbe{connect: true, end: make(chan error)}
		p, begun := scriptedProber(t, clk, starting, up)
		p.dialed(refusedErr, false, 0)
		<-begun
		res := admitOne(t, p)
		// The server answers the probe begun before the call, 50ms
		// later, that it is starting up: the call needs a probe begun
		// after it arrived, and waits for it past its downWait.
		clk.advance(50 * time.Millisecond)
		starting.end <- errors.New("pq: the database system is starting up (57P03)")
		select {
		case <-begun:
		case r := <-res:
			t.Fatalf("admit = %v before the next probe began, want it to wait for that probe", r.dd)
		}
		clk.advance(time.Second)
		time.Sleep(30 * time.Millisecond)
		up.end <- nil
		if r := <-res; r.dd != nil {
			t.Errorf("admit = %v, want nil: the next probe got through", r.dd)
		}
	})
	t.Run("refused, then a black hole", func(t *testing.T) {
		// The server answered only before the probe under way: a
		// probe whose connection is not made (packets dropped) leaves
		// the call on downWait.
		clk := &lockedClock{t: time.Unix(1000, 0)}
		p, begun := scriptedProber(t, clk, fakeProbe{end: make(chan error)})
		p.dialed(refusedErr, false, 0)
		<-begun
		res := admitOne(t, p)
		clk.advance(downWait)
		if r := <-res; r.dd == nil || r.ctxErr != nil {
			t.Errorf("admit = %v (context: %v), want down by the patience rule", r.dd, r.ctxErr)
		}
	})
}

// recordingWatch is a dialwatch.Watch that records what it was told.
type recordingWatch struct {
	mu          sync.Mutex
	conn, bytes bool
}

func (w *recordingWatch) Connected() { w.mu.Lock(); w.conn = true; w.mu.Unlock() }
func (w *recordingWatch) Answered()  { w.mu.Lock(); w.bytes = true; w.mu.Unlock() }

func (w *recordingWatch) seen() (connected, answered bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn, w.bytes
}

// TestPQDialerWatchesProbes: lib/pq's dialer tells a probe's Watch
// that its connection is made, and that the server sent bytes only once
// it has: a listener that accepts and stays silent (a black hole's proxy,
// a hung server) is connected but has not answered; one that writes a
// byte has.
func TestPQDialerWatchesProbes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
	}{{"silent", nil}, {"answers", []byte("E")}} {
		t.Run(tc.name, func(t *testing.T) {
			port := testsrv.FakeServer(t, tc.reply)
			rec := &recordingWatch{}
			ctx, cancel := context.WithTimeout(dialwatch.With(context.Background(), rec), 200*time.Millisecond)
			defer cancel()
			c := newPQConnector("host=127.0.0.1 port=" + strconv.Itoa(port) + " user=u dbname=d sslmode=disable")
			if conn, err := c.Connect(ctx); err == nil {
				_ = conn.Close()
				t.Fatal("Connect to a fake server succeeded")
			}
			connected, answered := rec.seen()
			if !connected || answered != (tc.reply != nil) {
				t.Errorf("watch told connected %v, answered %v; want true, %v", connected, answered, tc.reply != nil)
			}
		})
	}
}

// TestWasRefused: the failures that say the server's host answered.
func TestWasRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", refusedErr, true},
		{"unix socket gone", &dialError{err: &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}}, true},
		{"timed out", timedOutErr, false},
		{"unreachable", &dialError{err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}}, false},
		{"none", nil, false},
	} {
		if got := wasRefused(tc.err); got != tc.want {
			t.Errorf("%s: wasRefused = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDialConnectorWatchedDrivers: the probes of lib/pq and, with package
// dbmpgx (dialwatch.Pgx), pgx are watched; a DSN that pgx's connector
// cannot parse falls back to what New does without dbmpgx (here, where
// pgx is not registered, sql.Open's error), and other drivers keep the
// old patience.
func TestDialConnectorWatchedDrivers(t *testing.T) {
	old := dialwatch.Pgx
	t.Cleanup(func() { dialwatch.Pgx = old })
	fake := &closingConnector{}
	dialwatch.Pgx = func(string) (driver.Connector, error) { return fake, nil }
	for _, tc := range []struct {
		driver, dsn string
		watched     bool
	}{
		{DriverPostgres, "host=127.0.0.1 sslmode=disable", true},
		{DriverPgx, "postgres://127.0.0.1/?sslmode=disable", true},
		{memdriver.Name, "1", false},
	} {
		dc, err := newDialConnector(tc.driver, tc.dsn, time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.driver, err)
		}
		if dc.probe.watched != tc.watched {
			t.Errorf("%s: probes watched %v, want %v", tc.driver, dc.probe.watched, tc.watched)
		}
		_ = dc.Close()
	}
	dialwatch.Pgx = func(string) (driver.Connector, error) { return nil, errors.New("cannot parse") }
	if _, err := newDialConnector(DriverPgx, "::", time.Second); err == nil || !strings.Contains(err.Error(), "unknown driver") {
		t.Errorf("pgx's connector failed: %v, want sql.Open's own error (pgx is not registered here)", err)
	}
}
