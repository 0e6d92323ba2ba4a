package dbm

import (
	"math"
	"runtime"
	"time"
)

// The sweeper attaches the reclaiming cleanup (runtime.AddCleanup) only to the
// Rows and Tx that stay open for a while. runtime.AddCleanup and its Stop cost
// about as much as the rest of tracking together (BenchmarkAddCleanupFloor),
// and nearly every resource is closed within microseconds or milliseconds of
// being opened; until the sweeper has seen it, a node holds its wrapper
// (leakNode.youngRows, youngTx), so a young wrapper that the program dropped
// is not collected yet, only later. See docs/leaks.md.
const (
	// leakSweepInterval is how often the sweeper looks for young nodes
	// while there are any.
	leakSweepInterval = 100 * time.Millisecond
	// leakSweepAge is how long a resource must have been open before the
	// sweeper attaches its cleanup: a resource closed sooner never pays
	// for runtime.AddCleanup and Cleanup.Stop. 50 ms is thousands of times
	// longer than a query on a local database takes to be read and
	// closed, so few resources outlive it, and the roughly 150 ns that the
	// cleanup costs is then a negligible share of their life; yet it adds
	// at most leakSweepAge+leakSweepInterval (150 ms) before a dropped
	// resource can be reclaimed, much less than the time between two
	// garbage collections of a program that waits on a leak.
	leakSweepAge = 50 * time.Millisecond
)

// startSweeper starts the sweep loop unless it runs, Close was called, or a
// test turned it off. Opens call it when they find sweeping clear, which is
// rare: the loop runs while there are young nodes and stops when there are
// none (so an idle manager, or one never closed, keeps no goroutine).
func (r *leakRegistry) startSweeper() {
	if r.opts.noSweeper {
		return
	}
	r.sweepMu.Lock()
	defer r.sweepMu.Unlock()
	if r.closed {
		// An open that raced Close (it passed the closed check before Close
		// began): nothing sweeps any more, so attach the cleanup now.
		r.sweepBefore(math.MaxInt64)
		return
	}
	if r.sweepRun {
		return
	}
	r.sweepRun = true
	r.sweeping.Store(true)
	r.sweepDone = make(chan struct{})
	go r.sweepLoop(r.sweepDone)
}

// sweepLoop sweeps every leakSweepInterval until Close, or until no young
// node is left.
func (r *leakRegistry) sweepLoop(done chan struct{}) {
	defer close(done)
	t := time.NewTicker(leakSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-r.sweepStop:
			return
		case <-t.C:
		}
		if r.sweep(r.now()) > 0 {
			continue
		}
		// Nothing young is left: stop, unless an open comes in now. An
		// open links its node before it reads sweeping; the count below
		// comes after sweeping is cleared, so either the count sees the
		// node or the open sees sweeping clear and waits on sweepMu for
		// this decision before starting another loop.
		r.sweepMu.Lock()
		r.sweeping.Store(false)
		if r.sweep(r.now()) == 0 {
			r.sweepRun = false
			r.sweepMu.Unlock()
			return
		}
		r.sweeping.Store(true)
		r.sweepMu.Unlock()
	}
}

// stopSweeper stops the sweep loop for good and waits for it to return, then
// attaches the cleanup to every node still young, whatever its age: after
// Close nothing sweeps any more, and a resource left open may still be
// dropped and must then be reclaimed.
func (r *leakRegistry) stopSweeper() {
	r.sweepMu.Lock()
	r.closed = true
	running, done := r.sweepRun, r.sweepDone
	close(r.sweepStop)
	r.sweepMu.Unlock()
	if running {
		<-done
	}
	r.sweepBefore(math.MaxInt64)
}

// sweep attaches the cleanup to the young nodes opened at least leakSweepAge
// before now and returns how many nodes are still young.
func (r *leakRegistry) sweep(now time.Time) int {
	return r.sweepBefore(now.Sub(r.base) - leakSweepAge)
}

// sweepBefore attaches the cleanup to the young nodes opened before cutoff
// (as time since r.base) and drops their reference to the wrapper, which
// the garbage collector may then find unreachable. It returns how many
// nodes are still young.
func (r *leakRegistry) sweepBefore(cutoff time.Duration) (young int) {
	var attached uint64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for n := s.head; n != nil; n = n.next {
			switch {
			case n.youngRows == nil && n.youngTx == nil && n.youngConn == nil:
				continue
			case n.opened > cutoff:
				young++
				continue
			case n.youngRows != nil:
				// The wrapper is reachable (n holds it) while the
				// cleanup is attached; release, which stops it,
				// holds s.mu too.
				n.cleanup = runtime.AddCleanup(n.youngRows, reclaim, n)
			case n.youngTx != nil:
				n.cleanup = runtime.AddCleanup(n.youngTx, reclaim, n)
			default:
				n.cleanup = runtime.AddCleanup(n.youngConn, reclaim, n)
			}
			n.youngRows, n.youngTx, n.youngConn = nil, nil, nil
			attached++
		}
		s.mu.Unlock()
	}
	r.attached.Add(attached)
	return young
}
