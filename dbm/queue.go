package dbm

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/fifo"
)

// connQueue is the manager's fair queue for connections: a FIFO semaphore
// with one permit per connection the pool may open (Config.MaxOpenConns, or
// the MaxOpenConnections of a pool given to [Wrap]). Every statement,
// [Rows], [Tx], [Conn] and ping holds a permit for as long as it holds a
// connection, so database/sql always has a connection free (or room to
// open one) for a caller that holds a permit and never makes it wait.
// Callers that find no permit free wait in arrival order: the semaphore
// (internal/fifo) serves its waiters first in, first out, and a new caller
// does not overtake one that waits. database/sql alone hands a freed
// connection to a random waiter (it takes any key of its request map), so
// under overload some callers wait far longer than others.
//
// A caller that finds a permit free pays one TryAcquire (a compare-and-swap:
// no lock, no allocation, no timer) and gives it back with another. One
// that must wait allocates nothing either:
// Config.AcquireTimeout is the same for all waits and they are served in
// arrival order, so the semaphore's single timer, armed for the first
// waiter's deadline, bounds them all. (The queue used
// golang.org/x/sync/semaphore.Weighted before, with a context.WithTimeout
// per wait: under overload, where nearly every call waits, that cost 7
// allocations and a timer set and stopped per call; see
// docs/reliability.md#fair-queue.)
//
// A pool from [Wrap] without a bound (MaxOpenConnections 0, sql.Open's
// default) gets an unlimited queue (queueCap permits) when the manager
// has an acquire timeout: its calls then take the same cheap path as on a
// bounded pool, and a bound the application sets later on [Manager.DB] is
// followed (see follow), with fair waits bounded by the timeout. Only
// such a pool with [NoAcquireTimeout] has no queue (nil): there is nothing
// for it to bound, and its calls use the pool directly (see wrapQueue).
// So a manager with an acquire timeout always has a queue.
//
// Connections used on [Manager.DB] directly hold no permit; the statements
// that hold one may then still wait in database/sql, bounded by their
// context only.
type connQueue struct {
	sem *fifo.Queue // queueCap permits, of which the queue holds all but size
	// size is the bound it follows; resize changes it (see follow).
	size atomic.Int64
	// owed is how many permits given back are kept by the queue instead of
	// released, to shrink it while they were held.
	owed     atomic.Int64
	resizeMu sync.Mutex

	waiting atomic.Int64 // callers waiting for a permit now
	waits   atomic.Int64 // waits begun, in all
	waited  atomic.Int64 // nanoseconds waited by the waits that ended
	hist    waitHistogram
}

// newConnQueue returns the queue of a pool of maxOpen connections; 0 or
// less is unlimited, which the queue follows as its largest size,
// queueCap (see follow).
func newConnQueue(maxOpen int) *connQueue {
	n := int64(maxOpen)
	if n <= 0 || n > queueCap {
		n = queueCap
	}
	q := &connQueue{sem: fifo.New(queueCap)}
	if n < queueCap {
		q.sem.TryAcquire(queueCap - n)
	}
	q.size.Store(n)
	return q
}

// queueCap is the semaphore's size: the largest bound a queue can follow.
// The permits beyond the bound are held by the queue itself, so that a
// change of the pool's MaxOpenConns (on [Manager.DB]) can resize it.
const queueCap = 1 << 40

// give returns a permit. It does nothing on a nil queue.
func (q *connQueue) give() {
	if q == nil {
		return
	}
	for o := q.owed.Load(); o > 0; o = q.owed.Load() {
		if q.owed.CompareAndSwap(o, o-1) {
			return // kept: the queue shrank while it was held
		}
	}
	q.sem.Release(1)
}

// follow resizes the queue to the pool's bound maxOpen (0: unlimited,
// which the queue can only approach: queueCap). A smaller bound takes the
// free permits at once and the others as they are given back.
func (q *connQueue) follow(maxOpen int) {
	n := int64(maxOpen)
	if n <= 0 || n > queueCap {
		n = queueCap
	}
	q.resizeMu.Lock()
	defer q.resizeMu.Unlock()
	size := q.size.Load()
	switch {
	case n < size:
		k := size - n
		// Free permits in halving chunks, not one at a time: from
		// unlimited (queueCap) they are about 2^40.
		for c := k; k > 0 && c > 0; {
			if q.sem.TryAcquire(c) {
				k -= c
				c = min(c, k)
			} else {
				c /= 2
			}
		}
		q.owed.Add(k)
	case n > size:
		k := n - size
		for o := q.owed.Load(); k > 0 && o > 0; o = q.owed.Load() {
			if q.owed.CompareAndSwap(o, o-1) {
				k--
			}
		}
		if k > 0 {
			q.sem.Release(k)
		}
	}
	q.size.Store(n)
}

// payOwed is called by a caller that took a permit (ok) and is not known
// to be alone. While the queue owes permits (owed > 0), the callers hold
// more than the bound: size+owed with none free. A permit taken then was
// either taken before a lowered bound was followed, or is one that a
// give released instead of keeping (give read owed before follow added
// to it: the two are not atomic together). Either way its taker is over
// the bound and has not used its connection yet: it gives the permit
// back, which the queue keeps (paying one it owes), and tries again, so
// that a permit free while owed is never let past the bound (the caller
// would wait inside database/sql, past Config.AcquireTimeout). It
// reports whether the caller holds a permit.
func (q *connQueue) payOwed(ok bool) bool {
	for ok && q.owed.Load() > 0 {
		q.give()
		ok = q.sem.TryAcquire(1)
	}
	return ok
}

// waitingNow is how many callers wait for a permit; 0 on a nil queue.
func (q *connQueue) waitingNow() int {
	if q == nil {
		return 0
	}
	return int(q.waiting.Load())
}

// enter takes a permit of the manager's queue for work that then uses the
// pool directly (a read, BEGIN, a ping): the caller gives it back with
// m.queue.give once the pool has the connection back, or hands it to the
// [Rows] or [Tx] that keep the connection (see ownedConn). It fails fast
// with [ErrConnection] while the database is known to be down (see
// prober), and with [ErrPoolTimeout] when no permit came within
// Config.AcquireTimeout. An [AcquireTracer] is told how long the wait took.
//
// The returned connUse tells a [ReleaseTracer] when the connection goes
// back (connUse.end, or the [ownedConn] that keeps it); its zero value
// tells nothing.
func (m *Manager) enter(ctx context.Context, op, q string) (connUse, error) {
	if m.obs.acquirer == nil {
		return connUse{}, m.takePermit(ctx, op, q)
	}
	top := TraceOp{Name: op, Statement: m.secrets.Statement(q)}
	if m.obs.waiting != nil {
		m.obs.waiting.TraceAcquireStart(ctx, top)
	}
	start := m.obs.now()
	waited, err := m.permit(ctx, op, q)
	end := start // a permit free at once: no wait, and no second clock reading
	if waited || err != nil {
		end = m.obs.now()
	}
	m.obs.acquirer.TraceAcquire(ctx, top,
		TraceResult{Duration: end.Sub(start), Rows: -1, Err: err, Class: Classify(err), Waited: waited})
	if err != nil || m.obs.releaser == nil {
		return connUse{}, err
	}
	return connUse{t: m.obs.releaser, now: m.obs.now, op: top, since: end}, nil
}

// takePermit is enter without tracing.
func (m *Manager) takePermit(ctx context.Context, op, q string) error {
	_, err := m.permit(ctx, op, q)
	return err
}

// permit is takePermit that also reports whether the caller had to wait
// for its turn (no permit was free at once), for [TraceResult.Waited].
func (m *Manager) permit(ctx context.Context, op, q string) (waited bool, err error) {
	if m.probe.isDown() {
		if err := m.downErr(ctx, op, q); err != nil {
			return false, err
		}
	}
	cq := m.queue
	// The application may change MaxOpenConns on Manager.DB at any time;
	// the queue follows it. Asking the pool takes its lock, so a caller
	// asks only when the answer can matter: when others hold permits, a
	// smaller bound may leave none for it, and a larger one may have one
	// for a caller that would otherwise wait. A caller alone takes a
	// permit under any bound.
	// Whether it is alone, the caller learns from the semaphore as it
	// takes its permit (one compare-and-swap for both): of the permits
	// held before it, the queue holds queueCap-size-owed itself, and
	// callers the rest. Of callers arriving together, each sees the ones
	// before it, so only the first can skip the check (the queue counted
	// callers in an atomic of its own before: counting after the take in
	// a separate step let a burst all see none held and take permits of a
	// bound just lowered). A resize that runs meanwhile changes size or
	// owed, or the count: the caller then asks too.
	size, owed := cq.size.Load(), cq.owed.Load()
	before, ok := cq.sem.TryAcquireHeld(1)
	if !ok || before != queueCap-size-owed || cq.size.Load() != size || cq.owed.Load() != owed {
		m.followPool()
		if !ok {
			ok = cq.sem.TryAcquire(1) // a bound raised may have one free
		}
		ok = cq.payOwed(ok)
	}
	if ok {
		cq.hist.observe(0)
		return false, nil
	}
	return true, m.waitPermit(ctx, op, q)
}

// followPool resizes the queue to the pool's MaxOpenConns when the
// application changed it on [Manager.DB].
func (m *Manager) followPool() {
	cq := m.queue
	mo := m.db.Stats().MaxOpenConnections
	if size := cq.size.Load(); int64(mo) != size && (mo > 0 || size != queueCap) {
		cq.follow(mo)
	}
}

// waitPermit waits its turn for a permit, at most Config.AcquireTimeout
// (when set) on top of ctx; a database found down meanwhile ends the wait
// at once (see prober).
func (m *Manager) waitPermit(ctx context.Context, op, q string) error {
	cq := m.queue
	cq.waits.Add(1)
	cq.waiting.Add(1)
	start := time.Now()
	var bound time.Duration // 0: ctx alone ends the wait
	if m.retryPol.acquire > 0 && !endsWithin(ctx, m.retryPol.acquire) {
		bound = m.retryPol.acquire
	}
	err := cq.sem.Acquire(ctx, start, bound)
	for err == nil && cq.owed.Load() > 0 {
		// Handed a permit that a give released as the bound was
		// lowered (see payOwed): over the bound, it pays what the queue
		// owes and waits again, from the back, within the same bound.
		cq.give()
		err = cq.sem.Acquire(ctx, start, bound)
	}
	d := time.Since(start)
	cq.waiting.Add(-1)
	cq.waited.Add(int64(d))
	cq.hist.observe(d)
	switch {
	case err == nil:
		if m.probe.isDown() {
			// Found down while this caller waited: it does not dial either.
			if err := m.downErr(ctx, op, q); err != nil {
				cq.give()
				return err
			}
		}
		return nil
	case ctx.Err() != nil:
		return m.wrap(ctx, op, q, ctx.Err())
	}
	return m.poolTimeoutErr(op, q, err)
}

// poolStats is the pool's [sql.DBStats] with the waits in the manager's
// queue added to WaitCount and WaitDuration: with a queue, the callers wait
// there, and database/sql itself (almost) never does.
func (m *Manager) poolStats() sql.DBStats {
	st := m.db.Stats()
	if q := m.queue; q != nil {
		st.WaitCount += q.waits.Load()
		st.WaitDuration += time.Duration(q.waited.Load())
	}
	return st
}

// acquireBounds are the upper bounds of [AcquireHistogram]'s buckets.
var acquireBounds = [...]time.Duration{
	100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// waitHistogram counts waits for a permit by duration (acquireBounds, and
// one bucket more for the rest), with atomics.
type waitHistogram struct {
	counts [len(acquireBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *waitHistogram) observe(d time.Duration) {
	i := 0
	for i < len(acquireBounds) && d > acquireBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 {
		h.sum.Add(int64(d))
	}
}

// AcquireHistogram is the distribution of the time callers took to get
// their turn at a connection in the manager's queue (see
// docs/reliability.md#fair-queue): the time to connection, as the manager
// sees it. A caller that found a connection free counts in the first
// bucket with a time of 0. It is empty for a pool from [Wrap] without a
// MaxOpenConnections bound and with [NoAcquireTimeout], which has no
// queue.
type AcquireHistogram struct {
	// Bounds are the upper bounds of the buckets, ascending.
	Bounds []time.Duration
	// Counts has one count per bucket, and one more at the end for the
	// waits longer than the last bound. Counts[i] counts the waits longer
	// than Bounds[i-1] and at most Bounds[i] (not cumulative).
	Counts []uint64
	// Count is the number of acquires; Sum is their total time.
	Count uint64
	Sum   time.Duration
}

// snapshot fills an AcquireHistogram; nil queue: empty.
func (q *connQueue) snapshot() AcquireHistogram {
	if q == nil {
		return AcquireHistogram{}
	}
	h := AcquireHistogram{Bounds: acquireBounds[:], Counts: make([]uint64, len(q.hist.counts))}
	for i := range q.hist.counts {
		h.Counts[i] = q.hist.counts[i].Load()
		h.Count += h.Counts[i]
	}
	h.Sum = time.Duration(q.hist.sum.Load())
	return h
}
