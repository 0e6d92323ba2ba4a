package dbm_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestPostgresFairnessMeasure measures the time to connection under
// overload on PostgreSQL: 64 callers run point selects through a pool of 4
// connections for DBM_FAIRNESS_DURATION (default 10s) each, first with
// plain database/sql (lib/pq, the same pool settings), then with the
// manager, in turns of DBM_FAIRNESS_TURN (default one second), and logs
// p50, p99 and max time to connection and the throughput of both
// (docs/reliability.md#fair-queue has the figures). It asserts nothing
// about speed: it is a measurement, run only when asked:
//
//	DBM_FAIRNESS=1 go test -count=1 -run TestPostgresFairnessMeasure -v ./dbm
//
// On a loaded machine shorter turns (DBM_FAIRNESS_TURN=250ms) give more
// rounds, so that the median of the per-round throughput ratios holds
// still from run to run; a turn starts its 64 callers anew, which costs
// both sides alike.
//
// The time to connection of database/sql is how long [sql.DB.Conn] took;
// the manager's is its turn in the fair queue, as its [dbm.AcquireTracer]
// reports it (the statement then finds a connection free).
func TestPostgresFairnessMeasure(t *testing.T) {
	if os.Getenv("DBM_FAIRNESS") == "" {
		t.Skip("a measurement of 20s; set DBM_FAIRNESS=1 to run it")
	}
	dur := 10 * time.Second
	if s := os.Getenv("DBM_FAIRNESS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("DBM_FAIRNESS_DURATION: %v", err)
		}
		dur = d
	}
	turn := time.Second
	if s := os.Getenv("DBM_FAIRNESS_TURN"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("DBM_FAIRNESS_TURN: %q: want a positive duration", s)
		}
		turn = d
	}
	const pool, callers, keys = 4, 64, 1000
	rounds := max(int(dur/turn), 1)
	cfg := postgresConfig(t)
	cfg.MaxOpenConns, cfg.MaxIdleConns = pool, pool
	rec := &ttcTracer{}
	app := fmt.Sprintf("dbm_fairness_%d", os.Getpid())
	diagnose := os.Getenv("DBM_FAIRNESS_SLOWEST") != "" // see fairness_slowest_test.go
	if diagnose {
		cfg.Params = map[string]string{"application_name": app}
	}
	m, err := dbm.New(t.Context(), cfg, dbm.WithTracer(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	table := "fairpool_points_" + fmt.Sprint(os.Getpid())
	ctx := t.Context()
	if _, err := m.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, v text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = m.Exec(context.Background(), "DROP TABLE "+table) }()
	if _, err := m.Exec(ctx, "INSERT INTO "+table+" SELECT g, md5(g::text) FROM generate_series(1, $1) g", keys); err != nil {
		t.Fatal(err)
	}
	query := "SELECT v FROM " + table + " WHERE id = $1"

	raw, err := sql.Open("postgres", fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(pool)
	raw.SetMaxIdleConns(pool)

	var rawHold holdTimes // from Conn's return to Close's, as rec's ReleaseTracer times the manager's
	rawCall := func(ctx context.Context, key int) (time.Duration, error) {
		start := time.Now()
		conn, err := raw.Conn(ctx)
		got := time.Now()
		if err != nil {
			return 0, err
		}
		var v string
		err = conn.QueryRowContext(ctx, query, key).Scan(&v)
		_ = conn.Close()
		rawHold.add(time.Since(got))
		return got.Sub(start), err
	}
	mCall := func(ctx context.Context, key int) (time.Duration, error) {
		slot := new(time.Duration)
		var v string
		err := m.Get(context.WithValue(ctx, ttcKey{}, slot), &v, query, key)
		return *slot, err
	}
	// Both run in turns of a second, so that what else loads the machine
	// meanwhile falls on both alike, each going first in every other
	// round. Each turn's calls and the process's CPU time and allocations
	// are counted, so that the throughput of the two can be compared round
	// by round and the client's cost per call apart from the server's.
	if diagnose {
		runCallers(t, callers, 200*time.Millisecond, mCall) // opens the pool's connections, to find their backends
		slow := newSlowLog(1 << 21)
		slow.watchBackends(ctx, t, m, app)
		rec.slow = slow
	}
	var rawRun, mRun callerRun
	var rawCost, mCost turnCost
	ratios := make([]float64, 0, rounds)
	for i := range rounds {
		turn := func(call func(context.Context, int) (time.Duration, error), run *callerRun, cost *turnCost) int {
			r := cost.measure(func() callerRun { return runCallers(t, callers, dur/time.Duration(rounds), call) })
			run.add(r)
			return len(r.ttc)
		}
		var nRaw, nM int
		if i%2 == 0 {
			nRaw, nM = turn(rawCall, &rawRun, &rawCost), turn(mCall, &mRun, &mCost)
		} else {
			nM, nRaw = turn(mCall, &mRun, &mCost), turn(rawCall, &rawRun, &rawCost)
		}
		if nRaw > 0 {
			ratios = append(ratios, float64(nM)/float64(nRaw))
		}
	}
	slices.Sort(rawRun.ttc)
	slices.Sort(mRun.ttc)
	t.Logf("pool %d, %d callers, point selects for %s each; time to connection:", pool, callers, dur)
	t.Logf("| %-20s | %9s | %9s | %9s | %7s | %10s | %8s |", "", "p50", "p99", "max", "p99/p50", "calls/s", "errors")
	for _, r := range []struct {
		name string
		run  callerRun
	}{{"database/sql", rawRun}, {"dbm (fair queue)", mRun}} {
		p50, p99, mx := r.run.quantile(0.50), r.run.quantile(0.99), r.run.quantile(1)
		ratio := "-"
		if p50 > 0 {
			ratio = fmt.Sprintf("%.1f", float64(p99)/float64(p50))
		}
		t.Logf("| %-20s | %9s | %9s | %9s | %7s | %10.0f | %8d |", r.name, p50.Round(time.Microsecond), p99.Round(time.Microsecond),
			mx.Round(time.Microsecond), ratio, float64(len(r.run.ttc))/dur.Seconds(), r.run.errors)
	}
	if rawRun.quantile(1) > 0 && mRun.quantile(1) > 0 {
		t.Logf("max: database/sql / dbm = %.1f; throughput dbm / database/sql = %.3f",
			float64(rawRun.quantile(1))/float64(mRun.quantile(1)), float64(len(mRun.ttc))/float64(len(rawRun.ttc)))
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		t.Logf("throughput dbm / database/sql per round: median %.3f, min %.3f, max %.3f (%d rounds)",
			ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1], len(ratios))
	}
	t.Logf("client per call: database/sql %s, dbm %s", rawCost.per(len(rawRun.ttc)), mCost.per(len(mRun.ttc)))
	// Throughput is the pool's connections over the time each call holds
	// one: a longer hold is what a lower throughput is made of.
	if r, d := rawHold.mean(), rec.hold.mean(); r > 0 && d > 0 {
		t.Logf("connection held per call: database/sql %s, dbm %s (throughput they imply: dbm / database/sql = %.3f)",
			r.Round(100*time.Nanosecond), d.Round(100*time.Nanosecond), float64(r)/float64(d))
	}
	if rec.slow != nil {
		rec.slow.report(t)
	}
	s := m.Stats()
	t.Logf("dbm Stats: WaitCount %d, QueueLength %d, AcquireWait count %d; database/sql's own waits: %d", s.WaitCount, s.QueueLength, s.AcquireWait.Count, m.DB().Stats().WaitCount)
	if rawRun.errors+mRun.errors > 0 {
		t.Errorf("errors: database/sql %d, dbm %d; first: %v", rawRun.errors, mRun.errors, firstErr(rawRun, mRun))
	}
}

// turnCost adds up the process's CPU time and allocations over turns.
type turnCost struct {
	cpu     time.Duration
	cpuOK   bool
	mallocs uint64
}

// measure runs turn and adds what the process spent meanwhile.
func (c *turnCost) measure(turn func() callerRun) callerRun {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c0, ok := processCPU()
	r := turn()
	c1, _ := processCPU()
	runtime.ReadMemStats(&after)
	c.cpu += c1 - c0
	c.cpuOK = ok
	c.mallocs += after.Mallocs - before.Mallocs
	return r
}

// per is the cost per call of n calls.
func (c turnCost) per(n int) string {
	if n == 0 {
		return "-"
	}
	cpu := "CPU not measured"
	if c.cpuOK {
		cpu = fmt.Sprintf("CPU %.1fµs", float64(c.cpu.Nanoseconds())/float64(n)/1e3)
	}
	return fmt.Sprintf("%s, %.1f allocations", cpu, float64(c.mallocs)/float64(n))
}

// callerRun is what runCallers measured.
type callerRun struct {
	ttc    []time.Duration // sorted
	errors int
	first  error
}

func (r *callerRun) add(o callerRun) {
	r.ttc = append(r.ttc, o.ttc...)
	r.errors += o.errors
	if r.first == nil {
		r.first = o.first
	}
}

func (r callerRun) quantile(q float64) time.Duration {
	if len(r.ttc) == 0 {
		return 0
	}
	i := int(q * float64(len(r.ttc)-1))
	return r.ttc[i]
}

func firstErr(runs ...callerRun) error {
	for _, r := range runs {
		if r.first != nil {
			return r.first
		}
	}
	return nil
}

// runCallers runs call in n goroutines for dur, each on random keys, and
// gathers the times to connection it returns.
func runCallers(t *testing.T, n int, dur time.Duration, call func(ctx context.Context, key int) (time.Duration, error)) callerRun {
	ctx, cancel := context.WithTimeout(t.Context(), dur)
	defer cancel()
	var mu sync.Mutex
	var all callerRun
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range n {
		wg.Go(func() {
			var mine []time.Duration
			var errs int
			var first error
			for !stop.Load() && ctx.Err() == nil {
				ttc, err := call(context.Background(), 1+rand.IntN(1000))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				mine = append(mine, ttc)
			}
			mu.Lock()
			all.ttc = append(all.ttc, mine...)
			all.errors += errs
			if all.first == nil {
				all.first = first
			}
			mu.Unlock()
		})
	}
	<-ctx.Done()
	stop.Store(true)
	wg.Wait()
	slices.Sort(all.ttc)
	return all
}

// ttcKey carries the slot where ttcTracer stores a call's time to
// connection.
type ttcKey struct{}

// ttcTracer is a Tracer that stores each acquisition's wait in its call's
// slot, and adds up how long connections were held (the ReleaseTracer's
// time from the end of the wait to the release).
type ttcTracer struct {
	hold holdTimes
	slow *slowLog // nil unless DBM_FAIRNESS_SLOWEST is set
}

func (*ttcTracer) Start(ctx context.Context, _ dbm.TraceOp) context.Context { return ctx }
func (*ttcTracer) End(context.Context, dbm.TraceOp, dbm.TraceResult)        {}
func (t *ttcTracer) TraceRelease(_ context.Context, _ dbm.TraceOp, res dbm.TraceResult) {
	t.hold.add(res.Duration)
	if t.slow != nil {
		t.slow.released()
	}
}

// holdTimes adds up durations from many goroutines.
type holdTimes struct{ n, sum atomic.Int64 }

func (h *holdTimes) add(d time.Duration) { h.n.Add(1); h.sum.Add(int64(d)) }

func (h *holdTimes) mean() time.Duration {
	if n := h.n.Load(); n > 0 {
		return time.Duration(h.sum.Load() / n)
	}
	return 0
}

func (t *ttcTracer) TraceAcquire(ctx context.Context, _ dbm.TraceOp, res dbm.TraceResult) {
	if p, ok := ctx.Value(ttcKey{}).(*time.Duration); ok {
		*p += res.Duration
	}
	if t.slow != nil && res.Err == nil {
		t.slow.waited(res.Duration)
	}
}
