package dbm_test

// Network faults between the manager (lib/pq) and the shared PostgreSQL
// server, injected by a loopback proxy (internal/faultproxy): latency, a
// reset in the middle of a result set, and a black hole. Every call must
// end in the right class within its caller's deadline (plus slack), give its
// connection back, and leave no goroutine behind. Lines starting with
// "figure:" are the measurements docs/reliability.md reports.

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/faultproxy"
)

// netSlack is how much later than its deadline a call may end. The manager
// itself adds up to 100ms (lib/pq's cancel request gets that long to be
// answered); the rest is for a loaded machine (with the whole suite
// running on two busy cores, calls have ended seconds late). A call that
// hangs takes far longer: the faults below last longer than this.
const netSlack = 5 * time.Second

// pgViaProxy starts a fault proxy in front of the shared server and returns
// it with a Config that connects through it, with an application_name of
// its own. When the test ends, after the managers made with pgManager
// are closed, the proxy is closed and the test fails if it left a
// goroutine behind.
func pgViaProxy(t *testing.T) (*faultproxy.Proxy, dbm.Config) {
	t.Helper()
	cfg := postgresConfig(t)
	noGoroutineLeft(t)
	proxy, err := faultproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.Host, cfg.Port = "127.0.0.1", proxy.Port()
	cfg.Params = map[string]string{"application_name": "dbm-net-" + pgRandom(4)}
	return proxy, cfg
}

// noGoroutineLeft makes the test fail if, once it has ended and its other
// cleanups (registered after this call) have run, a goroutine started
// during it is still running. The test must not run in parallel.
func noGoroutineLeft(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// pgManager opens a manager with cfg. When the test ends it checks that
// every connection was given back and nothing is left open, and closes it.
func pgManager(t *testing.T, cfg dbm.Config) *dbm.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		waitFor(t, "a connection was never given back to the pool", func() bool { return m.Stats().InUse == 0 })
		if l := m.Leaks(); len(l) != 0 {
			t.Errorf("Leaks() = %v, want none", l)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// timed runs call and returns its error and how long it took. A call still
// running after limit fails the test: it hangs.
func timed(t *testing.T, limit time.Duration, call func() error) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- call() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("the call still runs after %v: it hangs", limit)
		return 0, nil
	}
}

// wantWithin checks that a call with the given deadline failed with want
// (and its class) no later than deadline + netSlack, and reports the time.
func wantWithin(t *testing.T, what string, deadline time.Duration, want error, class dbm.Class, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	took, err := timed(t, deadline+30*time.Second, func() error { return call(ctx) })
	t.Logf("figure: %s: deadline %v, error after %v, class %v", what, deadline, took.Round(time.Millisecond), dbm.Classify(err))
	if !errors.Is(err, want) || dbm.Classify(err) != class {
		t.Errorf("%s: err = %v (class %v), want %v (class %v)", what, err, dbm.Classify(err), want, class)
	}
	if took > deadline+netSlack {
		t.Errorf("%s: ended %v after its start, deadline %v: later than the deadline + %v", what, took, deadline, netSlack)
	}
}

// pgCalls are the kinds of call a network fault may hit, each given its
// context.
var pgCalls = []struct {
	name string
	call func(ctx context.Context, m *dbm.Manager) error
}{
	{"Get", func(ctx context.Context, m *dbm.Manager) error { var n int; return m.Get(ctx, &n, "SELECT 1") }},
	{"Select", func(ctx context.Context, m *dbm.Manager) error {
		_, err := dbm.Select[int64](ctx, m, "SELECT generate_series(1, 100)")
		return err
	}},
	{"Exec", func(ctx context.Context, m *dbm.Manager) error { _, err := m.Exec(ctx, "SELECT 1"); return err }},
	{"Iter", func(ctx context.Context, m *dbm.Manager) error {
		for _, err := range dbm.Iter[int64](ctx, m, "SELECT generate_series(1, 100)") {
			if err != nil {
				return err
			}
		}
		return nil
	}},
	{"WithTx", func(ctx context.Context, m *dbm.Manager) error {
		return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error { var n int; return tx.Get(ctx, &n, "SELECT 1") })
	}},
	{"Ping", func(ctx context.Context, m *dbm.Manager) error { return m.Ping(ctx) }},
}

// TestPostgresNetLatency: with latency every call still succeeds; a
// deadline shorter than the latency ends the call with ErrTimeout soon
// after the deadline, not when the late answer comes. (Before the manager
// bounded lib/pq's wait for its cancel request, such a call took the whole
// round trip or more: 12s here.)
func TestPostgresNetLatency(t *testing.T) {
	longTest(t, "network faults that wait out timeouts")
	proxy, cfg := pgViaProxy(t)
	// lib/pq's own connect_timeout too, which must neither stop the
	// manager's bounds from working nor cut connections short (lib/pq
	// cancels the context it dials with then).
	cfg.Params["connect_timeout"] = "10"
	m := pgManager(t, cfg)

	const d = 25 * time.Millisecond
	proxy.SetLatency(faultproxy.Both, d)
	t.Run("calls succeed", func(t *testing.T) {
		for _, c := range pgCalls {
			took, err := timed(t, time.Minute, func() error { return c.call(t.Context(), m) })
			if err != nil {
				t.Errorf("%s with %v latency each way: %v", c.name, d, err)
			}
			if took < 2*d { // proves that the latency applied
				t.Errorf("%s took %v, less than one round trip (%v)", c.name, took, 2*d)
			}
		}
	})

	t.Run("a shorter deadline", func(t *testing.T) {
		for _, c := range pgCalls {
			proxy.SetLatency(faultproxy.Both, 0)
			if err := pgCalls[0].call(t.Context(), m); err != nil { // a connection in the pool
				t.Fatal(err)
			}
			proxy.SetLatency(faultproxy.Both, 6*time.Second)
			wantWithin(t, "latency 6s each way, "+c.name, 150*time.Millisecond, dbm.ErrTimeout, dbm.ClassTimeout,
				func(ctx context.Context) error { return c.call(ctx, m) })
		}
		// A new connection, too.
		wantWithin(t, "latency 6s each way, New", 150*time.Millisecond, dbm.ErrConnection, dbm.ClassTimeout, func(ctx context.Context) error {
			m, err := dbm.New(ctx, cfg)
			if err == nil {
				m.Close()
			}
			return err
		})
	})

	proxy.SetLatency(faultproxy.Both, 0)
	waitFor(t, "a connection was never given back", func() bool { return m.Stats().InUse == 0 })
	if err := pgCalls[0].call(t.Context(), m); err != nil {
		t.Errorf("after the latency was removed: %v", err)
	}
}

// pgBigSelect returns 200000 rows (about 3.4MB on the wire); the proxy cuts
// its answer after pgResetAfter bytes, a few thousand rows in.
const (
	pgBigSelect  = "SELECT generate_series(1, 200000) AS n"
	pgBigRows    = 200000
	pgResetAfter = 64 << 10
)

// TestPostgresNetResetMidResult: a connection reset in the middle of a
// large result ends the read with ErrConnection, through every way of
// reading rows, on the pool and on a connection of the statement's own;
// nothing hangs and the pool works afterwards. With retries on, a read cut
// once is run again and succeeds.
func TestPostgresNetResetMidResult(t *testing.T) {
	proxy, cfg := pgViaProxy(t)
	cfg.RetryMaxAttempts = 1
	pool := pgManager(t, cfg)
	cfg.AcquireTimeout = 5 * time.Second
	own := pgManager(t, cfg)

	reads := []struct {
		name string
		read func(ctx context.Context, m *dbm.Manager) (rows int, err error)
	}{
		{"ExecuteQuery", func(ctx context.Context, m *dbm.Manager) (int, error) {
			out := []int64{42}
			err := m.ExecuteQuery(ctx, &out, pgBigSelect)
			return len(out), err
		}},
		{"Select", func(ctx context.Context, m *dbm.Manager) (int, error) {
			out, err := dbm.Select[int64](ctx, m, pgBigSelect)
			return len(out), err
		}},
		{"Iter", func(ctx context.Context, m *dbm.Manager) (int, error) {
			n := 0
			for _, err := range dbm.Iter[int64](ctx, m, pgBigSelect) {
				if err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}},
		{"Query and Next", func(ctx context.Context, m *dbm.Manager) (int, error) {
			rows, err := m.Query(ctx, pgBigSelect)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var v int64
				if err := rows.Scan(&v); err != nil {
					return n, err
				}
				n++
			}
			return n, rows.Err()
		}},
	}
	for _, mc := range []struct {
		name string
		m    *dbm.Manager
	}{{"pool", pool}, {"own connection", own}} {
		for _, r := range reads {
			t.Run(mc.name+"/"+r.name, func(t *testing.T) {
				cuts := proxy.Stats().Cuts
				proxy.ResetAfter([]byte(pgBigSelect), pgResetAfter, 1)
				var n int
				took, err := timed(t, time.Minute, func() (err error) { n, err = r.read(t.Context(), mc.m); return err })
				t.Logf("figure: reset after %d bytes, %s/%s: %d rows read, then %v after %v", pgResetAfter, mc.name, r.name, n, dbm.Classify(err), took.Round(time.Millisecond))
				if proxy.Stats().Cuts != cuts+1 {
					t.Fatal("the proxy did not reset the connection")
				}
				if !errors.Is(err, dbm.ErrConnection) || dbm.Classify(err) != dbm.ClassConnection {
					t.Errorf("err = %v (class %v), want ErrConnection", err, dbm.Classify(err))
				}
				switch {
				case r.name == "Iter" || r.name == "Query and Next":
					if n == 0 || n >= pgBigRows { // the error came mid-rows
						t.Errorf("%d rows before the error, want some but not all", n)
					}
				case n != 0:
					t.Errorf("%d rows in the result after an error, want none", n)
				}
				waitFor(t, "the cut connection was never given back", func() bool { return mc.m.Stats().InUse == 0 })
				if l := mc.m.Leaks(); len(l) != 0 {
					t.Errorf("Leaks() = %v", l)
				}
				if err := pgCalls[0].call(t.Context(), mc.m); err != nil {
					t.Errorf("the next statement: %v", err)
				}
			})
		}
	}

	t.Run("retried once", func(t *testing.T) {
		cfg := cfg
		cfg.RetryMaxAttempts, cfg.AcquireTimeout = 0, 0 // the default: 3 attempts
		m := pgManager(t, cfg)
		before := m.Stats().Retries
		const q, rows = "SELECT generate_series(1, 20000)", 20000
		proxy.ResetAfter([]byte(q), pgResetAfter, 1)
		out, err := dbm.Select[int64](t.Context(), m, q)
		if err != nil || len(out) != rows {
			t.Errorf("%d rows, %v; want the read retried and whole", len(out), err)
		}
		if r := m.Stats().Retries - before; r != 1 {
			t.Errorf("Retries grew by %d, want 1", r)
		}
	})
}

// TestPostgresNetBlackHole: when the network stops answering, a call with a
// deadline ends with ErrTimeout soon after it, whatever it was doing:
// connecting (New), waiting for an answer, BEGIN, reading rows, COMMIT.
// The connections are lost (lib/pq closes a connection whose call was
// cancelled), the pool is usable again once the network is, and Close
// returns while the network is still dead. Before the manager gave lib/pq
// a dialer of its own, each of these calls hung until the network came
// back (forever, here).
func TestPostgresNetBlackHole(t *testing.T) {
	longTest(t, "network faults that wait out timeouts")
	proxy, cfg := pgViaProxy(t)
	const deadline = 200 * time.Millisecond

	t.Run("New", func(t *testing.T) {
		proxy.SetBlackHole(faultproxy.Both)
		defer proxy.SetBlackHole(0)
		for _, dir := range []faultproxy.Direction{faultproxy.Both, faultproxy.ToClient} {
			proxy.SetBlackHole(dir)
			wantWithin(t, "black hole, New", deadline, dbm.ErrConnection, dbm.ClassTimeout, func(ctx context.Context) error {
				m, err := dbm.New(ctx, cfg)
				if err == nil {
					m.Close()
				}
				return err
			})
		}
		// Without a deadline on the context, Config.ConnectTimeout bounds New.
		cfg := cfg
		cfg.ConnectTimeout = deadline
		wantWithin(t, "black hole, New with ConnectTimeout", deadline, dbm.ErrConnection, dbm.ClassTimeout, func(context.Context) error {
			m, err := dbm.New(context.Background(), cfg)
			if err == nil {
				m.Close()
			}
			return err
		})
	})

	m := pgManager(t, cfg)
	for _, dir := range []faultproxy.Direction{faultproxy.Both, faultproxy.ToClient, faultproxy.ToServer} {
		t.Run("calls/"+dirName(dir), func(t *testing.T) {
			for _, c := range pgCalls {
				if dir != faultproxy.Both && c.name != "Get" && c.name != "WithTx" {
					continue // one way only: a statement and BEGIN suffice
				}
				if err := pgCalls[0].call(t.Context(), m); err != nil { // a connection in the pool
					t.Fatal(err)
				}
				proxy.SetBlackHole(dir)
				wantWithin(t, "black hole "+dirName(dir)+", "+c.name, deadline, dbm.ErrTimeout, dbm.ClassTimeout,
					func(ctx context.Context) error { return c.call(ctx, m) })
				proxy.SetBlackHole(0)
				waitFor(t, "a connection was never given back", func() bool { return m.Stats().InUse == 0 })
			}
		})
	}

	t.Run("cancel request cannot connect", func(t *testing.T) {
		// Behind a real black hole the cancel request's own connection
		// hangs too (its SYN is lost; lib/pq allows the dial 10s), which
		// the proxy cannot show: its port always accepts. Dials hang here
		// instead, until the subtest ends.
		if err := pgCalls[0].call(t.Context(), m); err != nil { // a connection in the pool
			t.Fatal(err)
		}
		release := make(chan struct{})
		defer close(release)
		defer dbm.SetPQDialForTest(func(ctx context.Context, _, _ string) (net.Conn, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return nil, errors.New("test over")
			}
		})()
		proxy.SetBlackHole(faultproxy.Both)
		defer proxy.SetBlackHole(0)
		wantWithin(t, "black hole, the cancel request cannot connect, Get", deadline, dbm.ErrTimeout, dbm.ClassTimeout,
			func(ctx context.Context) error { return pgCalls[0].call(ctx, m) })
	})

	t.Run("mid-rows", func(t *testing.T) {
		// Rows of 9000 bytes, each flushed on its own, one every 20ms:
		// the hole opens after the first has arrived.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		n := 0
		took, err := timed(t, time.Minute, func() error {
			for _, err := range dbm.Iter[string](ctx, m, "SELECT repeat('x', 9000) || pg_sleep(0.02) FROM generate_series(1, 1000)") {
				if err != nil {
					return err
				}
				if n++; n == 1 {
					proxy.SetBlackHole(faultproxy.Both)
				}
			}
			return nil
		})
		proxy.SetBlackHole(0)
		t.Logf("figure: black hole mid-rows: deadline 1s, %d rows, then %v after %v", n, dbm.Classify(err), took.Round(time.Millisecond))
		if !errors.Is(err, dbm.ErrTimeout) || n == 0 || n >= 1000 {
			t.Errorf("after %d rows: %v; want ErrTimeout mid-rows", n, err)
		}
		if took > time.Second+netSlack {
			t.Errorf("ended after %v, deadline 1s", took)
		}
	})

	t.Run("COMMIT", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.Get(ctx, &n, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		proxy.SetBlackHole(faultproxy.ToClient) // COMMIT arrives, its answer does not
		defer proxy.SetBlackHole(0)
		took, err := timed(t, time.Minute, tx.Commit)
		t.Logf("figure: black hole at COMMIT: deadline 1s (from BEGIN), error after %v: %v", took.Round(time.Millisecond), dbm.Classify(err))
		if !errors.Is(err, dbm.ErrCommitUnknown) || !errors.Is(err, dbm.ErrTimeout) {
			t.Errorf("err = %v, want ErrCommitUnknown and ErrTimeout", err)
		}
		if took > time.Second+netSlack {
			t.Errorf("Commit ended after %v, deadline 1s", took)
		}
	})

	t.Run("Close", func(t *testing.T) {
		cfg := cfg
		cfg.MaxIdleConns = 4
		m := pgManager(t, cfg)
		for range 3 { // idle connections for Close to close
			if err := pgCalls[0].call(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		proxy.SetBlackHole(faultproxy.Both)
		defer proxy.SetBlackHole(0)
		took, err := timed(t, time.Minute, m.Close)
		t.Logf("figure: Close with the network dead: %v, %v", took.Round(time.Millisecond), err)
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func dirName(d faultproxy.Direction) string {
	switch d {
	case faultproxy.ToServer:
		return "to server"
	case faultproxy.ToClient:
		return "to client"
	}
	return "both ways"
}

// TestPostgresRawConnUnwraps: the manager wraps lib/pq's connections (see
// pqconn.go); lib/pq's functions that need its own connection get it with
// Unwrap.
func TestPostgresRawConnUnwraps(t *testing.T) {
	m := newPostgres(t)
	conn, err := m.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		u, ok := dc.(interface{ Unwrap() driver.Conn })
		if !ok {
			t.Fatalf("the driver connection %T has no Unwrap method", dc)
		}
		pq.SetNoticeHandler(u.Unwrap(), func(*pq.Error) {})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
