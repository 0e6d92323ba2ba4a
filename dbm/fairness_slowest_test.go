package dbm_test

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// The fairness measurement's diagnosis of its slowest waits, on when
// DBM_FAIRNESS_SLOWEST is set (it costs the client about 5% of a core):
//
//	DBM_FAIRNESS=1 DBM_FAIRNESS_SLOWEST=1 go test -count=1 -run TestPostgresFairnessMeasure -v ./dbm
//
// In a FIFO queue a waiter's time is the service time of everyone ahead of
// it, so the longest waits are those during which the connection holders
// made the least progress. For the manager's five longest waits (apart
// from one another) it logs how many connections were given back during
// the wait and the longest gap between two, the garbage collector's
// pauses in it, and how the CPU was shared over it (Linux: the schedstat
// of the 4 PostgreSQL backends and of this process's threads, sampled
// every millisecond): what the backends and the process ran, and how long
// they were runnable but waited for a CPU, against the same shares during
// waits of median length.

// slowLog records the manager's waits and releases with the times at
// which they happened (from the ttcTracer's callbacks).
type slowLog struct {
	base          time.Time
	start, end    []int64 // waits, nanoseconds since base
	nw            atomic.Int64
	release       []int64
	nr            atomic.Int64
	backends      []int
	samples       []schedSample
	stop, stopped chan struct{}
}

func newSlowLog(n int) *slowLog {
	return &slowLog{base: time.Now(), start: make([]int64, n), end: make([]int64, n), release: make([]int64, n)}
}

func (l *slowLog) waited(d time.Duration) {
	if i := l.nw.Add(1) - 1; int(i) < len(l.start) {
		e := int64(time.Since(l.base))
		l.start[i], l.end[i] = e-int64(d), e
	}
}

func (l *slowLog) released() {
	if i := l.nr.Add(1) - 1; int(i) < len(l.release) {
		l.release[i] = int64(time.Since(l.base))
	}
}

// schedSample is the summed schedstat (ns on a CPU, ns waiting for one)
// of the backends and of this process's threads at a moment.
type schedSample struct{ at, bRun, bWait, pRun, pWait int64 }

// watchBackends starts sampling the CPU shares of m's backends (found by
// the application name app) and of this process; not on systems without
// /proc/PID/schedstat.
func (l *slowLog) watchBackends(ctx context.Context, t *testing.T, m *dbm.Manager, app string) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Logf("no schedstat (%v): the CPU shares are not sampled", err)
		return
	}
	rows, err := m.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		l.backends = append(l.backends, pid)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the manager's backends: %v", l.backends)
	l.stop, l.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			l.samples = append(l.samples, l.sample())
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

func (l *slowLog) sample() schedSample {
	read := func(path string) (run, wait int64) {
		b, err := os.ReadFile(path)
		if err == nil {
			_, _ = fmt.Sscan(string(b), &run, &wait)
		}
		return run, wait
	}
	s := schedSample{at: int64(time.Since(l.base))}
	for _, pid := range l.backends {
		r, w := read(fmt.Sprintf("/proc/%d/schedstat", pid))
		s.bRun, s.bWait = s.bRun+r, s.bWait+w
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		r, w := read("/proc/self/task/" + task.Name() + "/schedstat")
		s.pRun, s.pWait = s.pRun+r, s.pWait+w
	}
	return s
}

// cpuShares are the CPUs' worth that the backends and this process ran
// and waited for a CPU over a window; ok is false without samples.
type cpuShares struct {
	bRun, bWait, pRun, pWait float64
	ok                       bool
}

// shares measures the CPU shares between the samples around [from, to].
func (l *slowLog) shares(from, to int64) cpuShares {
	i := max(sort.Search(len(l.samples), func(k int) bool { return l.samples[k].at > from })-1, 0)
	j := min(sort.Search(len(l.samples), func(k int) bool { return l.samples[k].at >= to }), len(l.samples)-1)
	if i >= j {
		return cpuShares{}
	}
	a, b := l.samples[i], l.samples[j]
	w := float64(b.at - a.at)
	return cpuShares{float64(b.bRun-a.bRun) / w, float64(b.bWait-a.bWait) / w, float64(b.pRun-a.pRun) / w, float64(b.pWait-a.pWait) / w, true}
}

func (c cpuShares) String() string {
	if !c.ok {
		return "CPU shares not sampled"
	}
	return fmt.Sprintf("backends ran %.2f, waited for a CPU %.2f; this process ran %.2f, waited %.2f (CPUs' worth)", c.bRun, c.bWait, c.pRun, c.pWait)
}

// report logs the diagnosis.
func (l *slowLog) report(t *testing.T) {
	if l.stop != nil {
		close(l.stop)
		<-l.stopped
	}
	var gc debug.GCStats
	gc.Pause, gc.PauseEnd = make([]time.Duration, 256), make([]time.Time, 256)
	debug.ReadGCStats(&gc)
	nw, nr := min(int(l.nw.Load()), len(l.start)), min(int(l.nr.Load()), len(l.release))
	rel := slices.Clone(l.release[:nr])
	slices.Sort(rel)
	byLength := make([]int, nw)
	for i := range byLength {
		byLength[i] = i
	}
	sort.Slice(byLength, func(a, b int) bool {
		return l.end[byLength[a]]-l.start[byLength[a]] > l.end[byLength[b]]-l.start[byLength[b]]
	})
	if nw == 0 || len(rel) < 2 {
		return
	}
	median := time.Duration(l.end[byLength[nw/2]] - l.start[byLength[nw/2]])
	// The typical share: the mean over 50 waits from the middle half.
	var typical cpuShares
	for k := range 50 {
		i := byLength[nw/4+k*(nw/2)/50]
		c := l.shares(l.start[i], l.end[i])
		typical.bRun, typical.bWait, typical.pRun, typical.pWait = typical.bRun+c.bRun/50, typical.bWait+c.bWait/50, typical.pRun+c.pRun/50, typical.pWait+c.pWait/50
		typical.ok = c.ok
	}
	t.Logf("slowest waits of the manager; a median wait (%s) saw: %s", median.Round(time.Microsecond), typical)
	var shown [][2]int64
	for _, i := range byLength {
		if len(shown) == 5 {
			break
		}
		s, e := l.start[i], l.end[i]
		if slices.ContainsFunc(shown, func(w [2]int64) bool { return s < w[1] && e > w[0] }) {
			continue
		}
		shown = append(shown, [2]int64{s, e})
		a := sort.Search(len(rel), func(k int) bool { return rel[k] >= s })
		b := sort.Search(len(rel), func(k int) bool { return rel[k] > e })
		var gap int64
		for k := a + 1; k < b; k++ {
			gap = max(gap, rel[k]-rel[k-1])
		}
		pauses := ""
		for k, end := range gc.PauseEnd {
			if at := int64(end.Sub(l.base)); at >= s && at <= e {
				pauses += fmt.Sprintf(", GC pause %s", gc.Pause[k].Round(time.Microsecond))
			}
		}
		t.Logf("  %s at %s: %d connections given back in it, longest gap %s%s; %v", time.Duration(e-s).Round(time.Microsecond),
			time.Duration(s).Round(time.Millisecond), b-a, time.Duration(gap).Round(time.Microsecond), pauses, l.shares(s, e))
	}
}
