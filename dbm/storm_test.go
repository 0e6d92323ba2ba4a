package dbm_test

// Many callers against a small pool, and storms of calls whose contexts end
// at random points, on PostgreSQL (lib/pq) and on SQLite. Lines starting
// with "figure:" are the measurements docs/reliability.md reports.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// outcomes counts the results of many calls by class ("ok" for success).
type outcomes struct {
	mu     sync.Mutex
	counts map[string]int
	bad    []string // unexpected errors, the first few
}

func (o *outcomes) add(err error, allowed ...dbm.Class) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	if err == nil {
		o.counts["ok"]++
		return
	}
	c := dbm.Classify(err)
	o.counts[c.String()]++
	if !slices.Contains(allowed, c) || !errors.Is(err, c.Sentinel()) {
		if len(o.bad) < 10 {
			o.bad = append(o.bad, fmt.Sprintf("%v (class %v, allowed %v)", err, c, allowed))
		}
		o.counts["unexpected"]++
	}
}

// String lists the counts, largest first.
func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := make([]string, 0, len(o.counts))
	for k := range o.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return o.counts[b] - o.counts[a] })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, o.counts[k])
	}
	return b.String()
}

func (o *outcomes) check(t *testing.T) {
	t.Helper()
	for _, e := range o.bad {
		t.Errorf("unexpected error: %s", e)
	}
}

// runParallel runs op(i) for i in [0, n) on workers goroutines.
func runParallel(workers, n int, op func(worker, i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				op(w, i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// settle waits until m lends out no connection (database/sql gives some
// back in the background after a context ends), then checks that nothing
// is left open and that m still works.
func settle(t *testing.T, m *dbm.Manager) {
	t.Helper()
	waitFor(t, "a connection was never given back to the pool", func() bool { return m.Stats().InUse == 0 })
	if l := m.Leaks(); len(l) != 0 {
		t.Errorf("Leaks() = %v, want none", l)
	}
	var n int
	if err := m.Get(t.Context(), &n, "SELECT 1"); err != nil || n != 1 {
		t.Errorf("the manager after the storm: %d, %v", n, err)
	}
}

// poolCalls are what the callers of TestPostgresPoolExhaustionManyCallers
// do; hold is a statement that keeps its connection for a while.
func poolCall(ctx context.Context, m *dbm.Manager, i int, hold string) error {
	switch i % 6 {
	case 0:
		var s string
		return m.Get(ctx, &s, hold)
	case 1:
		_, err := m.Exec(ctx, hold)
		return err
	case 2:
		return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error { _, err := tx.Exec(ctx, hold); return err })
	case 3:
		rows, err := m.Query(ctx, hold)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	case 4:
		_, err := dbm.Select[string](ctx, m, hold)
		return err
	default:
		return m.Ping(ctx)
	}
}

// TestPostgresPoolExhaustionManyCallers: 300 callers share a pool of 4
// connections with AcquireTimeout 200ms. Every caller succeeds or gets
// ErrPoolTimeout, nothing else, no sooner than the acquire timeout and not
// much later; afterwards no connection is in use and the manager works.
func TestPostgresPoolExhaustionManyCallers(t *testing.T) {
	longTest(t, "a storm of 300 callers")
	cfg := postgresConfig(t)
	noGoroutineLeft(t)
	cfg.MaxOpenConns = 4
	const acquire = 200 * time.Millisecond
	cfg.AcquireTimeout = acquire
	m := pgManager(t, cfg)
	const callers = 300

	// hammer runs the callers at once and returns the outcomes and the
	// times to ErrPoolTimeout.
	hammer := func(t *testing.T, hold string) (*outcomes, []time.Duration) {
		var o outcomes
		var mu sync.Mutex
		var waits []time.Duration
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				begin := time.Now()
				err := poolCall(t.Context(), m, i, hold)
				took := time.Since(begin)
				o.add(err, dbm.ClassPoolTimeout)
				if errors.Is(err, dbm.ErrTimeout) {
					t.Errorf("caller %d: %v also matches ErrTimeout (its context did not end)", i, err)
				}
				if err != nil {
					mu.Lock()
					waits = append(waits, took)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		o.check(t)
		slices.Sort(waits)
		for _, w := range waits {
			if w < acquire { // the timer never fires early
				t.Errorf("a caller got ErrPoolTimeout after %v, before the acquire timeout %v", w, acquire)
				break
			}
		}
		if len(waits) > 0 && waits[len(waits)-1] > acquire+netSlack {
			t.Errorf("a caller waited %v for ErrPoolTimeout, acquire timeout %v", waits[len(waits)-1], acquire)
		}
		return &o, waits
	}
	report := func(t *testing.T, what string, o *outcomes, waits []time.Duration) {
		t.Helper()
		q := func(p float64) time.Duration {
			if len(waits) == 0 {
				return 0
			}
			return waits[int(p*float64(len(waits)-1))].Round(time.Millisecond)
		}
		t.Logf("figure: pool of 4, AcquireTimeout 200ms, %d callers, %s: %s; ErrPoolTimeout after min %v, median %v, p99 %v, max %v",
			callers, what, o, q(0), q(0.5), q(0.99), q(1))
	}

	t.Run("all held by transactions", func(t *testing.T) {
		var txs []*dbm.Tx
		for range cfg.MaxOpenConns {
			tx, err := m.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			txs = append(txs, tx)
		}
		o, waits := hammer(t, "SELECT 'x'")
		for _, tx := range txs {
			if err := tx.Rollback(); err != nil {
				t.Error(err)
			}
		}
		report(t, "all 4 held by transactions", o, waits)
		if o.counts["pool_timeout"] != callers {
			t.Errorf("outcomes %s, want all %d ErrPoolTimeout: no connection was free", o, callers)
		}
		settle(t, m)
	})

	t.Run("held by the callers' pg_sleep", func(t *testing.T) {
		o, waits := hammer(t, "SELECT pg_sleep(0.05)::text")
		report(t, "each holding its connection 50ms", o, waits)
		if o.counts["ok"] < cfg.MaxOpenConns || o.counts["pool_timeout"] == 0 {
			t.Errorf("outcomes %s, want at least %d successes (the free connections) and some ErrPoolTimeout (300 x 50ms on 4 connections)", o, cfg.MaxOpenConns)
		}
		settle(t, m)
	})
}

// stormDB is what a context storm needs from a database.
type stormDB struct {
	sleep func(d time.Duration) (string, []any) // a statement that takes about d
	rows  string                                // a statement with nrows rows
	nrows int
}

// stormOp is one call of a context storm: kind i%7 says where its context
// ends. It returns the call's error and the classes that error may have.
func stormOp(m *dbm.Manager, db stormDB, r *rand.Rand, i int) (allowed []dbm.Class, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	canceled := []dbm.Class{dbm.ClassCanceled}
	short := func() time.Duration { return time.Duration(r.IntN(15_000)) * time.Microsecond }
	switch i % 7 {
	case 0: // before the call
		cancel()
		var n int
		err := m.Get(ctx, &n, "SELECT 1")
		if err == nil {
			err = errors.New("a call with a canceled context succeeded")
		}
		return canceled, err
	case 1: // during a statement
		q, args := db.sleep(short())
		time.AfterFunc(short(), cancel)
		var s []string
		if r.IntN(2) == 0 {
			return canceled, m.ExecuteQuery(ctx, &s, q, args...)
		}
		_, err := m.Exec(ctx, q, args...)
		return canceled, err
	case 2: // a deadline during a statement
		ctx, cancel := context.WithTimeout(ctx, short())
		defer cancel()
		q, args := db.sleep(short())
		var s []string
		return []dbm.Class{dbm.ClassTimeout}, m.ExecuteQuery(ctx, &s, q, args...)
	case 3: // during Iter's rows
		stop := r.IntN(db.nrows * 6 / 5) // past the end sometimes
		n := 0
		for _, err := range dbm.Iter[int64](ctx, m, db.rows) {
			if err != nil {
				return canceled, err
			}
			if n++; n == stop {
				cancel()
			}
		}
		return canceled, nil
	case 4: // during Query and Next
		rows, err := m.Query(ctx, db.rows)
		if err != nil {
			return canceled, err
		}
		defer rows.Close()
		stop := r.IntN(db.nrows * 6 / 5)
		for n := 1; rows.Next(); n++ {
			if n == stop {
				cancel()
			}
		}
		return canceled, rows.Err()
	case 5: // inside WithTx's function
		at := r.IntN(3)
		err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			for step := range 3 {
				if step == at {
					cancel()
				}
				var n int
				if err := tx.Get(ctx, &n, "SELECT 1"); err != nil {
					return err
				}
			}
			return nil
		})
		return canceled, err
	default: // during Commit
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			return canceled, err
		}
		var n int
		if err := tx.Get(ctx, &n, "SELECT 1"); err != nil {
			_ = tx.Rollback()
			return canceled, err
		}
		time.AfterFunc(time.Duration(r.IntN(2000))*time.Microsecond, cancel)
		err = tx.Commit()
		if errors.Is(err, dbm.ErrCommitUnknown) && !errors.Is(err, dbm.ErrCanceled) {
			err = fmt.Errorf("commit unknown without ErrCanceled: %w", err)
		}
		return []dbm.Class{dbm.ClassCanceled, dbm.ClassCommitUnknown}, err
	}
}

// contextStorm runs ops calls on 32 goroutines, spread over the managers,
// each with a context that ends at a random point, and checks that every
// error has its call's class, and that afterwards no connection is in use,
// nothing is left open and every manager works.
func contextStorm(t *testing.T, db stormDB, ops int, ms ...*dbm.Manager) {
	var o outcomes
	var mu sync.Mutex
	var slowest [7]time.Duration
	start := time.Now()
	runParallel(32, ops, func(w, i int) {
		r := rand.New(rand.NewPCG(uint64(w), uint64(i)))
		begin := time.Now()
		allowed, err := stormOp(ms[i%len(ms)], db, r, i)
		took := time.Since(begin)
		o.add(err, allowed...)
		mu.Lock()
		slowest[i%7] = max(slowest[i%7], took)
		mu.Unlock()
	})
	t.Logf("figure: context storm, %d calls in %v: %s; slowest call by kind %v", ops, time.Since(start).Round(time.Millisecond), &o, slowest)
	o.check(t)
	if o.counts["ok"] == 0 || o.counts["canceled"] == 0 {
		t.Errorf("outcomes %s: want both successes and cancellations", &o)
	}
	for _, m := range ms {
		settle(t, m)
	}
}

// TestPostgresContextStorm: 3000 calls on lib/pq, half on the pool and half
// on connections of their own (AcquireTimeout), whose contexts end before
// the call, during a statement, during row iteration, inside WithTx's
// function and during Commit.
func TestPostgresContextStorm(t *testing.T) {
	longTest(t, "a storm of cancelled contexts")
	cfg := postgresConfig(t)
	noGoroutineLeft(t)
	cfg.MaxOpenConns = 8
	cfg.Params = map[string]string{"application_name": "dbm-storm-" + pgRandom(4)}
	pool := pgManager(t, cfg)
	cfg.AcquireTimeout = time.Minute // the own-connection path; not a test of pool waits
	own := pgManager(t, cfg)
	contextStorm(t, stormDB{
		sleep: func(d time.Duration) (string, []any) {
			return "SELECT pg_sleep($1)::text", []any{d.Seconds()}
		},
		rows:  "SELECT generate_series(1, 300)",
		nrows: 300,
	}, 3000, pool, own)
}

// TestSQLiteContextStorm is the storm on SQLite (modernc), so that machines
// without PostgreSQL run it too: 600 calls, as SQLite's work is done by
// the test's own CPU (a statement "sleeps" by counting).
func TestSQLiteContextStorm(t *testing.T) {
	longTest(t, "a storm of cancelled contexts")
	noGoroutineLeft(t)
	m := newSQLite(t)
	own, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverSQLite, Database: t.TempDir() + "/storm.db", AcquireTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	count := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) SELECT CAST(max(x) AS TEXT) FROM c"
	contextStorm(t, stormDB{
		// At least one row: LIMIT 0 would give max(x) = NULL, which no
		// string holds (a scan error, not what the storm is about).
		sleep: func(d time.Duration) (string, []any) { return count, []any{d.Microseconds()/10 + 1} },
		rows:  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x FROM c",
		nrows: 100,
	}, 600, m, own)
}
