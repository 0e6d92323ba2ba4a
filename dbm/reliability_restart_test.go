package dbm_test

// Server restarts under load, on a throwaway PostgreSQL server of the
// test's own (dbm/internal/pgtest): the same manager must work again once
// the server is back, without being re-created.

import (
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// recoveryBound is how long the manager may take, once the server accepts
// logins again, to run statements again: generous, the machines running the
// tests are slow and shared. It bounds a hang; it is not a speed target.
const recoveryBound = 30 * time.Second

// TestReliabilityServerRestart: four workers write (Exec and WithTx) and
// read (ExecuteQuery, Get, Select) through one manager while the server is
// stopped (pg_ctl stop -m fast, then -m immediate, a crash) and started
// again. The manager recovers by itself: the time from the server accepting
// connections (the time its log gives) to the manager's first successful
// statement, and until every worker has had a write acknowledged, is logged
// and bounded by recoveryBound. Operations that fail during the outage fail
// with ErrConnection; every read begun after pg_ctl start returned
// succeeds, although the pool may still hold dead connections; no acknowledged
// write is lost, none is written twice, and afterwards no connection is
// left in use. It runs on both paths: the pool's, and connections of their
// own (AcquireTimeout), each with a manager of its own.
//
// The server runs with pgtest.Durable (synchronous_commit on): without it,
// PostgreSQL acknowledges a commit before its WAL is written, and a crash
// (-m immediate) may lose acknowledged commits by design.
func TestReliabilityServerRestart(t *testing.T) {
	t.Parallel() // most of its time is initdb and pg_ctl, in other processes
	srv := pgtest.Start(t, pgtest.OnMissing(missingServer), pgtest.Durable())
	cfg := dbm.Config{Host: srv.Host, Port: srv.Port, User: srv.Superuser, Password: srv.Password, Database: "postgres", SSLMode: "disable"}
	// The managers under test, each kept across both of its restarts: one
	// on the pool path, one with connections of their own.
	type path struct {
		name string
		cfg  dbm.Config
		m    *dbm.Manager
	}
	var paths []path
	for _, p := range managerPaths {
		c := cfg
		c.AcquireTimeout = p.acquire
		paths = append(paths, path{p.name, c, pgOpenOn(t, srv, c)})
	}
	// admin creates the tables and checks them after the load. It keeps one
	// idle connection: a Ping after a restart replaces it if it is dead, so
	// that admin's writes (CREATE TABLE) do not fail on a dead one.
	adminCfg := cfg
	adminCfg.MaxIdleConns = 1
	admin := pgOpenOn(t, srv, adminCfg)
	const workers = 4

	for _, mode := range []string{"fast", "immediate"} {
		for _, p := range paths {
			t.Run("stop -m "+mode+", "+p.name, func(t *testing.T) { restartUnderLoad(t, srv, mode, p.cfg, p.m, admin, workers) })
		}
	}
}

// pgOpenOn opens a manager on srv, closed when the test ends.
func pgOpenOn(t *testing.T, srv *pgtest.Server, cfg dbm.Config) *dbm.Manager {
	t.Helper()
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v\nserver log:\n%s", err, srv.Log())
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// restartUnderLoad is one stop and start of srv under a load on m, made
// with cfg. Two more managers made with cfg sit idle through the restart,
// their pools full of connections that die with the server, as an
// application's would at a quiet time: the first read of one and the first
// Ping of the other must succeed once the server is back.
func restartUnderLoad(t *testing.T, srv *pgtest.Server, mode string, cfg dbm.Config, m, admin *dbm.Manager, workers int) {
	if err := admin.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	const idleConns = 3
	idleRead, idlePing := pgOpenOn(t, srv, cfg), pgOpenOn(t, srv, cfg)
	pgFillPool(t, idleRead, idleConns)
	pgFillPool(t, idlePing, idleConns)
	before := m.Stats()
	l := newFaultLoad(t, m, admin, workers, 0)
	l.readsMayFail = true
	l.start(5)
	defer l.halt()
	l.waitWarm(t, recoveryBound)

	if err := srv.Stop(mode); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	o := l.serverDown()
	// Keep the server down until every worker has seen a write
	// fail: each then has a failure to be checked and a recovery
	// to make.
	select {
	case <-o.failDone:
	case <-time.After(recoveryBound):
		t.Fatalf("with the server down, not every worker had a write fail within %s", recoveryBound)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	l.serverUp()
	// When the server started accepting connections, from its own log:
	// polling it from here would measure the poller too.
	ready, err := srv.ReadyAt()
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := idleRead.Get(t.Context(), &one, "SELECT 1"); err != nil {
		t.Errorf("first read of a manager idle through the restart, with %d dead connections in its pool: %v", idleConns, err)
	}
	if err := idlePing.Ping(t.Context()); err != nil {
		t.Errorf("first Ping of a manager idle through the restart, with %d dead connections in its pool: %v", idleConns, err)
	}
	for _, wait := range []struct {
		what string
		done chan struct{}
	}{{"no successful statement", o.firstDone}, {"not every worker had a write acknowledged", o.allDone}} {
		select {
		case <-wait.done:
		case <-time.After(recoveryBound):
			t.Fatalf("%s within %s of pg_ctl start returning\nserver log:\n%s", wait.what, recoveryBound, srv.Log())
		}
	}
	l.halt()
	first, all := time.Unix(0, o.first.Load()), time.Unix(0, o.all.Load())

	r := l.report()
	s := m.Stats()
	t.Logf("%s: server down %s (from the end of pg_ctl stop to the server logging that it accepts connections); manager's first success %s after that, a write acknowledged to every worker %s after",
		t.Name(), ready.Sub(stopped).Round(time.Millisecond), first.Sub(ready).Round(time.Millisecond), all.Sub(ready).Round(time.Millisecond))
	t.Logf("%s; %s", r, statsLine(before, s))
	if d := first.Sub(ready); d > recoveryBound {
		t.Errorf("first success %s after the server accepted logins, want < %s", d, recoveryBound)
	}
	if s.InUse != 0 {
		t.Errorf("Stats().InUse = %d after the load, want 0", s.InUse)
	}
	applied := l.verify(t, admin)
	t.Logf("writes with an unknown outcome that had taken effect: %d of %d", applied, r.unknown)
}
