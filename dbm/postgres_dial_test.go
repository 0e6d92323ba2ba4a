package dbm_test

// A slow or failing dial is not a pool timeout: AcquireTimeout bounds the
// wait for a full pool, ConnectTimeout each new connection.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/faultproxy"
)

// TestPostgresSlowDialIsNotPoolTimeout: with AcquireTimeout 50ms and a free
// slot in the pool, a statement whose new connection takes far longer than
// that to log in (every packet delayed through a proxy) succeeds: the dial
// is bounded by ConnectTimeout, not by the pool wait. A dial that the
// server never answers fails with ErrConnection naming the dial once
// ConnectTimeout has passed, never with ErrPoolTimeout ("in use 0"), nor
// with ErrTimeout (the caller's deadline had not passed). A full pool is
// still ErrPoolTimeout.
func TestPostgresSlowDialIsNotPoolTimeout(t *testing.T) {
	longTest(t, "network faults that wait out timeouts")
	proxy, cfg := pgViaProxy(t)
	cfg.MaxOpenConns = 2
	cfg.AcquireTimeout = 50 * time.Millisecond
	cfg.ConnectTimeout = 30 * time.Second
	m := pgManager(t, cfg)
	ctx := t.Context()

	// The connection New made is held by a transaction: the next statement
	// dials a second one, slowly (a login is several round trips).
	holder, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetLatency(faultproxy.ToClient, 100*time.Millisecond)
	start := time.Now()
	var n int
	if err := m.Get(ctx, &n, "SELECT 1"); err != nil || n != 1 {
		t.Fatalf("Get on a slow dial = %d, %v; want 1 (the dial is not bounded by AcquireTimeout)", n, err)
	}
	t.Logf("figure: Get that dialled through 100ms latency: %v", time.Since(start).Round(time.Millisecond))
	proxy.SetLatency(faultproxy.ToClient, 0)

	// Both connections held: the pool is full, and that is a pool timeout.
	rows, err := m.Query(dbm.NotIdempotent(ctx), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Ping(ctx)
	if !errors.Is(err, dbm.ErrPoolTimeout) || !strings.Contains(err.Error(), "in use 2") {
		t.Errorf("full pool: %v, want ErrPoolTimeout with in use 2", err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}

	// A dial the server never answers.
	m2cfg := cfg
	m2cfg.ConnectTimeout = 300 * time.Millisecond
	m2cfg.MaxOpenConns = 1
	m2 := pgManager(t, m2cfg)
	m2.DB().SetMaxIdleConns(0) // close New's connection: the next statement dials
	m2.DB().SetMaxIdleConns(1)
	proxy.SetBlackHole(faultproxy.ToClient)
	took, err := timed(t, 30*time.Second, func() error { return m2.Get(ctx, &n, "SELECT 1") })
	proxy.SetBlackHole(0)
	t.Logf("figure: Get whose dial is never answered, ConnectTimeout 300ms: %v after %v", err, took.Round(time.Millisecond))
	if !errors.Is(err, dbm.ErrConnection) || errors.Is(err, dbm.ErrPoolTimeout) || errors.Is(err, dbm.ErrTimeout) {
		t.Errorf("dial never answered: %v (class %v), want ErrConnection, not ErrPoolTimeout or ErrTimeout", err, dbm.Classify(err))
	}
	if err != nil && !strings.Contains(err.Error(), "dial: gave up after the connect timeout (300ms)") {
		t.Errorf("dial never answered: %q, want the message to name the dial and ConnectTimeout", err)
	}
}
