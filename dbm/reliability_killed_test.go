package dbm_test

// Killed backends under load, on the shared PostgreSQL server: the manager's
// own backends (found by a unique application_name) are terminated every few
// tens of milliseconds while workers read and write.

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgKiller terminates, every interval, the backends of the connections
// opened with a given application_name. It works from a plain database/sql
// pool of its own, so that its statements stay out of the figures of the
// managers under test.
type pgKiller struct {
	stopCh         chan struct{}
	done           chan struct{}
	rounds, killed int // backends terminated; written by the killer until done
	err            error
}

// startPgKiller starts terminating app's backends every interval on the
// shared server, until stop.
func startPgKiller(t *testing.T, app string, every time.Duration) *pgKiller {
	t.Helper()
	cfg := postgresConfig(t)
	db, err := sql.Open("postgres", fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=dbm-killer",
		cfg.Host, cfg.Port, cfg.User, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	k := &pgKiller{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		defer db.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-k.stopCh:
				return
			case <-tick.C:
			}
			// No timeout argument: pg_terminate_backend would then wait for
			// each backend to go, polling every 100ms, and a round would
			// take far longer than the interval.
			var n int
			if err := db.QueryRow("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
				k.err = err
				return
			}
			k.rounds++
			k.killed += n
		}
	}()
	return k
}

// stop stops the killer and returns how many rounds it ran and how many
// backends it terminated.
func (k *pgKiller) stop(t *testing.T) (rounds, killed int) {
	t.Helper()
	close(k.stopCh)
	<-k.done
	if k.err != nil {
		t.Fatalf("terminating the manager's backends: %v", k.err)
	}
	return k.rounds, k.killed
}

// TestReliabilityKilledBackendsUnderLoad: five workers write (Exec and
// WithTx) and read (ExecuteQuery, Get, Select) for a few seconds
// ($DBM_RELIABILITY_DURATION, default 2s, on each path) while the manager's
// backends are terminated every 20ms. Every read succeeds and sees every
// acknowledged write; no key is written twice; failed writes match
// ErrConnection (most ErrOutcomeUnknown too), and a write whose error does
// not say its outcome is unknown did not take effect. It runs on both paths:
// the pool's (database/sql replaces broken connections for reads, and retries
// them) and connections of their own (AcquireTimeout set: database/sql does
// neither, the manager must).
func TestReliabilityKilledBackendsUnderLoad(t *testing.T) {
	longTest(t, "a long reliability run")
	duration := reliabilityDuration(t, 2*time.Second)
	const workers, every = 5, 20 * time.Millisecond
	admin := newPostgres(t)
	for _, path := range managerPaths {
		t.Run(path.name, func(t *testing.T) {
			m, app := newPostgresApp(t, "dbm-rel-kill-", func(c *dbm.Config) { c.AcquireTimeout = path.acquire })
			l := newFaultLoad(t, m, admin, workers, 0)
			k := startPgKiller(t, app, every)
			l.start(1)
			<-time.After(duration)
			l.halt()
			rounds, killed := k.stop(t)

			r := l.report()
			s := m.Stats()
			t.Logf("%s: load for %s, backends terminated every %s: %s", t.Name(), duration, every, r)
			t.Logf("kill rounds %d, backends terminated %d; %s", rounds, killed, statsLine(dbm.Stats{}, s))
			if killed == 0 {
				t.Error("no backend of the manager's was terminated: the test proved nothing")
			}
			if r.acked == 0 {
				t.Error("no write was acknowledged")
			}
			if s.InUse != 0 {
				t.Errorf("Stats().InUse = %d after the load, want 0", s.InUse)
			}
			applied := l.verify(t, admin)
			t.Logf("writes with an unknown outcome that had taken effect: %d of %d", applied, r.unknown)
		})
	}
}
