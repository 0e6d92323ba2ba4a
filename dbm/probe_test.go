package dbm_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/faultproxy"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

const (
	probeCallers = 64 // callers at once while the database is down
	probeCalls   = 3  // calls each
)

// TestProbeServerStopped: a throwaway server is stopped under a manager.
// Once a dial has been refused, the database is marked down, and 64
// callers at once all fail with ErrConnection without dialing: every
// connection attempt made meanwhile is one of the prober's, one at a time.
// When the server is started again, every caller gets through, and the
// manager opens at most MaxOpenConns connections besides its probes (no
// stampede). The times (fast failures, first success after the server
// logged that it accepts connections) are logged, not asserted.
func TestProbeServerStopped(t *testing.T) {
	t.Parallel() // most of its time is initdb and pg_ctl, in other processes
	srv := pgtest.Start(t, pgtest.OnMissing(missingServer))
	cfg := dbm.Config{Host: srv.Host, Port: srv.Port, User: srv.Superuser, Password: srv.Password, Database: "postgres", SSLMode: "disable", MaxOpenConns: 4}
	m := pgOpenOn(t, srv, cfg)
	ctx := t.Context()
	var one int
	if err := m.Get(ctx, &one, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.ProbeState != dbm.ProbeUp {
		t.Fatalf("ProbeState = %q on a working server, want %q", s.ProbeState, dbm.ProbeUp)
	}
	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the manager never marked the database down", func() bool {
		_ = m.Get(ctx, &one, "SELECT 1")
		return m.Stats().ProbeState == dbm.ProbeDown
	})
	fastFailWhileDown(t, m)

	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	ready, err := srv.ReadyAt()
	if err != nil {
		t.Fatal(err)
	}
	recoverAll(t, m, ready, cfg.MaxOpenConns)
}

// TestProbeBlackHole: the same with the server behind a port that stops
// answering (a black hole: connections are accepted and get no reply), so
// that each connection attempt runs into ConnectTimeout. Once one has, the
// other callers fail fast instead of each waiting for its own.
func TestProbeBlackHole(t *testing.T) {
	proxy, cfg := pgViaProxy(t)
	cfg.MaxOpenConns = 4
	cfg.ConnectTimeout = 300 * time.Millisecond
	m := pgManager(t, cfg)
	m.DB().SetMaxIdleConns(0) // every statement dials: no connection sits in the hole
	ctx := t.Context()
	var one int
	if err := m.Get(ctx, &one, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	proxy.SetBlackHole(faultproxy.Both)
	waitFor(t, "the manager never marked the database down", func() bool {
		err := m.Get(ctx, &one, "SELECT 1")
		if err != nil && !errors.Is(err, dbm.ErrConnection) {
			t.Fatalf("Get into the black hole: %v, want ErrConnection", err)
		}
		return m.Stats().ProbeState == dbm.ProbeDown
	})
	fastFailWhileDown(t, m)
	m.DB().SetMaxIdleConns(cfg.MaxOpenConns) // what comes back stays in the pool
	proxy.SetBlackHole(0)
	recoverAll(t, m, time.Now(), cfg.MaxOpenConns)
}

// fastFailWhileDown runs probeCallers callers of probeCalls reads each on m
// while its database is down: every read fails with ErrConnection, and no
// caller dials.
func fastFailWhileDown(t *testing.T, m *dbm.Manager) {
	t.Helper()
	before := m.Stats()
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	for range probeCallers {
		wg.Go(func() {
			for range probeCalls {
				start := time.Now()
				var one int
				err := m.Get(context.Background(), &one, "SELECT 1")
				d := time.Since(start)
				if !errors.Is(err, dbm.ErrConnection) {
					t.Errorf("Get while the database is down: %v, want ErrConnection", err)
				}
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	after := m.Stats()
	probes := after.Probes - before.Probes
	attempts := after.ConnectAttempts - before.ConnectAttempts
	fast := after.FastFailures - before.FastFailures
	if attempts != probes {
		t.Errorf("%d connection attempts while down, of which %d probes: callers dialed", attempts, probes)
	}
	if fast != probeCallers*probeCalls {
		t.Errorf("FastFailures grew by %d, want %d (every call, once: a call failed fast is not retried)", fast, probeCallers*probeCalls)
	}
	slices.Sort(took)
	t.Logf("down: %d calls failed fast, %d connection attempts (all probes); call took p50 %s, p99 %s, max %s",
		len(took), attempts, took[len(took)/2].Round(time.Microsecond), took[len(took)*99/100].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
}

// recoverAll runs probeCallers callers on m, whose database is back since
// ready, until each has had a read succeed: the manager then opens at most
// maxOpen connections besides its probes.
func recoverAll(t *testing.T, m *dbm.Manager, ready time.Time, maxOpen int) {
	t.Helper()
	before := m.Stats()
	var first atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(t.Context(), recoveryBound)
	defer cancel()
	for range probeCallers {
		wg.Go(func() {
			for ctx.Err() == nil {
				var one int
				err := m.Get(ctx, &one, "SELECT 1")
				if err == nil {
					first.CompareAndSwap(0, time.Now().UnixNano())
					return
				}
				if !errors.Is(err, dbm.ErrConnection) && ctx.Err() == nil {
					t.Errorf("Get while the database comes back: %v, want success or ErrConnection", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
			t.Errorf("no read got through within %s of the database coming back", recoveryBound)
		})
	}
	wg.Wait()
	after := m.Stats()
	probes := after.Probes - before.Probes
	attempts := after.ConnectAttempts - before.ConnectAttempts
	if attempts-probes > uint64(maxOpen) {
		t.Errorf("%d connection attempts besides %d probes while %d callers came back, want <= MaxOpenConns %d: a reconnect stampede", attempts-probes, probes, probeCallers, maxOpen)
	}
	if after.ProbeState != dbm.ProbeUp {
		t.Errorf("ProbeState = %q after recovery, want %q", after.ProbeState, dbm.ProbeUp)
	}
	t.Logf("back: first success %s after the database was back; %d connection attempts (%d probes) until all %d callers got through",
		time.Unix(0, first.Load()).Sub(ready).Round(time.Millisecond), attempts, probes, probeCallers)
}
