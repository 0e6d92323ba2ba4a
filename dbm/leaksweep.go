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

	// reclaimWaitThreshold is how long the pool must have stayed full
	// since a caller began to wait for a connection before the manager
	// forces a garbage collection (see reclaimForWaiters). The sweep loop
	// looks every leakSweepInterval, so a waiter gets a dropped resource's
	// connection after 100 to 300 ms: a wait that long on a local pool is
	// rare without a leak, and short next to any acquire timeout.
	reclaimWaitThreshold = 100 * time.Millisecond
	// reclaimMinGap and reclaimMaxGap bound the pause between two forced
	// collections: a collection that reclaimed nothing (the pool is merely
	// busy, its resources alive) doubles the pause up to reclaimMaxGap; one
	// that reclaimed something resets it to reclaimMinGap. A forced
	// collection costs a few milliseconds of CPU on a small heap; one per
	// 16 s is noise even for a large one.
	reclaimMinGap = time.Second
	reclaimMaxGap = 16 * time.Second
)

// waitWatch is what the sweep loop remembers between its looks at the pool;
// only that loop uses it.
type waitWatch struct {
	waits     int64         // sql.DBStats.WaitCount at the last look
	since     time.Time     // when a wait was first seen on a full pool; zero: none
	next      time.Time     // no forced collection before then
	gap       time.Duration // the pause after the last forced collection
	reclaimed uint64        // reg.reclaimed before it
}

// startSweeper starts the sweep loop unless it runs, Close was called, or a
// test turned it off. Opens call it when they find sweeping clear, which is
// rare: the loop runs while tracked resources are open and stops when none
// is (so an idle manager, or one never closed with nothing open, keeps no
// goroutine).
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

// sweepLoop sweeps every leakSweepInterval until Close, or until no node is
// left open; while nodes are open it also watches the pool for callers that
// wait (see reclaimForWaiters).
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
		now := r.now()
		young := r.sweep(now)
		r.reclaimForWaiters(now)
		if young > 0 || r.aged.Load() > 0 {
			continue
		}
		// Nothing is left open: stop, unless an open comes in now. An
		// open links its node before it reads sweeping; the count below
		// comes after sweeping is cleared, so either the count sees the
		// node or the open sees sweeping clear and waits on sweepMu for
		// this decision before starting another loop. (A node ages only
		// in a sweep, so an aged one needs a young one first.)
		r.sweepMu.Lock()
		r.sweeping.Store(false)
		if r.sweep(r.now()) == 0 && r.aged.Load() == 0 {
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
			n.youngRows, n.youngTx, n.youngConn, n.aged = nil, nil, nil, true
			attached++
		}
		s.mu.Unlock()
	}
	r.attached.Add(attached)
	r.aged.Add(int64(attached))
	return young
}

// reclaimForWaiters forces a garbage collection when a caller waits for a
// connection while Rows or Tx are open that the program may have dropped.
// A program that only waits allocates nothing, so no collection would come
// by itself, and a dropped resource's connection would never come back.
//
// The sweep loop calls it at every look while nodes are open. It reads the
// pool's counts, which tell when a wait began (WaitCount grew) but not when
// it ended; so it forces a collection when the pool has stayed full for
// reclaimWaitThreshold since a wait began, then waits for another wait to
// begin, and never forces two collections closer than the pause of
// waitWatch.gap. Every path that waits (the pool's own, a connection of its
// own for Config.AcquireTimeout, BeginTx, Ping, or the application's calls
// on [Manager.DB]) shows in WaitCount, and the statements pay nothing.
func (r *leakRegistry) reclaimForWaiters(now time.Time) {
	w := &r.wait
	if r.aged.Load() == 0 {
		// Nothing that a collection could reclaim. (w.waits is not
		// updated: a wait that began meanwhile counts at the next look,
		// at worst one collection the rate limit allows anyway.)
		w.since = time.Time{}
		return
	}
	st := r.hooks.poolStats()
	if st.MaxOpenConnections <= 0 || st.InUse < st.MaxOpenConnections {
		w.since, w.waits = time.Time{}, st.WaitCount // a free slot: no one waits
		return
	}
	if st.WaitCount != w.waits {
		w.waits = st.WaitCount
		if w.since.IsZero() {
			w.since = now
		}
	}
	if w.since.IsZero() || now.Sub(w.since) < reclaimWaitThreshold || now.Before(w.next) {
		return
	}
	// Rate limit: double the pause after a collection that reclaimed
	// nothing (the reclaims run after it, so this one is judged now).
	if n := r.reclaimed.Load(); w.gap == 0 || n != w.reclaimed {
		w.gap = reclaimMinGap
	} else {
		w.gap = min(2*w.gap, reclaimMaxGap)
	}
	w.next, w.since, w.reclaimed = now.Add(w.gap), time.Time{}, r.reclaimed.Load()
	// A dropped wrapper that is still young is held by its node: attach
	// every cleanup now, so that this collection can find it too.
	r.sweepBefore(math.MaxInt64)
	r.collections.Add(1)
	runtime.GC() // queues the cleanups (reclaim) of what was dropped
}
