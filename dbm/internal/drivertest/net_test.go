package drivertest

// Network faults between the manager and PostgreSQL with pgx, through the
// loopback proxy of dbm/internal/faultproxy (the lib/pq versions are dbm's
// postgres_net_test.go): a call with a deadline ends with ErrTimeout soon
// after it when the network is dead or slow, a reset mid-result ends the
// read with ErrConnection, and the pool recovers.

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
	"github.com/dbmanager-go/dbmanager/dbm/internal/faultproxy"
)

func TestPgxNetworkFaults(t *testing.T) {
	host, port := conformance.PostgresAddr(t)
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	proxy, err := faultproxy.Start(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cfg := dbm.Config{Driver: dbm.DriverPgx, Host: "127.0.0.1", Port: proxy.Port(), User: "postgres", Database: "test", SSLMode: "disable", RetryMaxAttempts: 1}
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for m.Stats().InUse != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s := m.Stats(); s.InUse != 0 {
			t.Errorf("Stats().InUse = %d at the end", s.InUse)
		}
		if l := m.Leaks(); len(l) != 0 {
			t.Errorf("Leaks() = %v", l)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	// within runs call with a context of the given deadline; it must fail
	// with want no later than deadline + 5s (slack for a loaded machine:
	// with the whole suite running, calls have ended seconds late).
	within := func(t *testing.T, what string, deadline time.Duration, want error, class dbm.Class, call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- call(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(deadline + 30*time.Second):
			t.Fatalf("%s: still running after %v: it hangs", what, deadline+30*time.Second)
		}
		took := time.Since(start)
		t.Logf("figure: pgx, %s: deadline %v, error after %v, class %v", what, deadline, took.Round(time.Millisecond), dbm.Classify(err))
		if !errors.Is(err, want) || dbm.Classify(err) != class {
			t.Errorf("%s: err = %v (class %v), want %v (class %v)", what, err, dbm.Classify(err), want, class)
		}
		if took > deadline+5*time.Second {
			t.Errorf("%s: ended after %v, deadline %v", what, took, deadline)
		}
	}
	get := func(ctx context.Context) error { var n int; return m.Get(ctx, &n, "SELECT 1") }
	withTx := func(ctx context.Context) error {
		return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error { var n int; return tx.Get(ctx, &n, "SELECT 1") })
	}
	const deadline = 200 * time.Millisecond

	for _, fault := range []struct {
		name  string
		set   func()
		calls map[string]func(context.Context) error
	}{
		{"black hole", func() { proxy.SetBlackHole(faultproxy.Both) }, map[string]func(context.Context) error{"Get": get, "WithTx": withTx, "Ping": m.Ping}},
		{"latency 6s", func() { proxy.SetLatency(faultproxy.Both, 6*time.Second) }, map[string]func(context.Context) error{"Get": get, "WithTx": withTx}},
	} {
		for name, call := range fault.calls {
			if err := get(t.Context()); err != nil { // a connection in the pool
				t.Fatal(err)
			}
			fault.set()
			within(t, fault.name+", "+name, deadline, dbm.ErrTimeout, dbm.ClassTimeout, call)
			proxy.SetBlackHole(0)
			proxy.SetLatency(faultproxy.Both, 0)
		}
	}
	proxy.SetBlackHole(faultproxy.Both)
	within(t, "black hole, New", deadline, dbm.ErrConnection, dbm.ClassTimeout, func(ctx context.Context) error {
		m, err := dbm.New(ctx, cfg)
		if err == nil {
			m.Close()
		}
		return err
	})
	proxy.SetBlackHole(0)

	t.Run("reset mid-result", func(t *testing.T) {
		const q = "SELECT generate_series(1, 200000)"
		proxy.ResetAfter([]byte(q), 64<<10, 1)
		n := 0
		var err error
		for _, err = range dbm.Iter[int64](t.Context(), m, q) {
			if err != nil {
				break
			}
			n++
		}
		t.Logf("figure: pgx, reset after 65536 bytes, Iter: %d rows, then %v", n, dbm.Classify(err))
		if !errors.Is(err, dbm.ErrConnection) || n == 0 || n >= 200000 {
			t.Errorf("after %d rows: %v; want ErrConnection mid-rows", n, err)
		}
		if err := get(t.Context()); err != nil {
			t.Errorf("the next statement: %v", err)
		}
	})
}
