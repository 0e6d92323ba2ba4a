// Package fifo is the counting semaphore behind package dbm's fair queue
// for connections. It serves its waiters first in, first out, as
// golang.org/x/sync/semaphore.Weighted does (whose behaviour it keeps, and
// which the queue used before), with two differences that make a wait
// cheaper under overload, when nearly every caller waits, and one that
// makes a permit cheaper when nobody waits:
//
//   - A wait may carry a bound (dbm's Config.AcquireTimeout). In dbm all
//     waits of a queue have the same bound and are served in arrival
//     order, so the first of them in the queue has the earliest deadline:
//     one timer, armed for that deadline, watches them all. (The queue
//     keeps its bounded waiters in deadline order, so any bounds work.)
//     With Weighted, dbm made a context.WithTimeout for each wait (a
//     context, a timer, a channel; armed, then stopped).
//   - A waiter and its channel are reused ([sync.Pool]) instead of
//     allocated per wait (Weighted allocates the channel, the list element
//     and the boxed waiter).
//   - While nobody waits, TryAcquire and Release take no lock: one
//     compare-and-swap each on a word of the permits held and a bit set
//     while callers wait (see Queue.state). dbm takes and gives back a
//     permit for every statement.
//
// Only waits for one permit are supported; taking or giving back more at
// once (to resize the queue) never waits.
package fifo

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Queue is a counting semaphore of a fixed size whose waiters for a permit
// are served in arrival order. A caller that finds a permit free does not
// take it while others wait. The zero value has no permits; use [New].
type Queue struct {
	// state is the number of permits held, plus hasWaiters while callers
	// wait. Without waiters, TryAcquire and Release change it with one
	// compare-and-swap and take no lock. With waiters, TryAcquire fails
	// (it never overtakes one) and Release takes mu to hand the permits
	// on; state then changes only under mu. The bit is set (under mu) only
	// by a compare-and-swap from a state with no permit free, so a Release
	// that frees one either comes first (and the caller takes the permit
	// instead of waiting) or sees the bit and hands it on: no wakeup is
	// lost.
	state atomic.Int64
	size  int64

	mu sync.Mutex // protects the fields below

	// The waiters in arrival order, and the ones among them with a
	// deadline, in deadline order (which is arrival order but for callers
	// that read the clock and then lost the race for mu to the next one).
	head, tail   *waiter
	dhead, dtail *waiter
	waiting      int
	timer        *time.Timer // runs expire; made on the first bounded wait
	timerAt      time.Time   // when timer fires; zero: not armed
}

// waiter is one caller waiting for a permit.
type waiter struct {
	// ready gets one value (its capacity) when the waiter leaves the
	// queue on someone else's move: it has its permit, or (expired) its
	// deadline passed. A waiter that leaves on its own (its context ended
	// first) gets nothing.
	ready    chan struct{}
	expired  bool      // written under Queue.mu before the send on ready
	queued   bool      // in the list; under Queue.mu
	deadline time.Time // zero: no bound but the caller's context

	prev, next   *waiter // arrival order
	dprev, dnext *waiter // deadline order, bounded waiters only
}

var waiters = sync.Pool{New: func() any { return &waiter{ready: make(chan struct{}, 1)} }}

// hasWaiters is the bit of Queue.state set while callers wait.
const hasWaiters = 1 << 62

// New returns a queue of size permits, all free. size is less than 2^62.
func New(size int64) *Queue {
	if size < 0 || size >= hasWaiters {
		panic("fifo: size < 0 or >= 2^62")
	}
	return &Queue{size: size}
}

// TryAcquire takes n permits if they are free and nobody waits, without
// blocking; it reports whether it took them.
func (q *Queue) TryAcquire(n int64) bool {
	_, ok := q.TryAcquireHeld(n)
	return ok
}

// TryAcquireHeld is TryAcquire that also returns how many permits were
// held just before it took them (or found them taken): of callers that
// take permits at the same time, each sees the ones before it.
func (q *Queue) TryAcquireHeld(n int64) (held int64, ok bool) {
	for {
		s := q.state.Load()
		if s&hasWaiters != 0 || q.size-s < n {
			return s &^ hasWaiters, false
		}
		if q.state.CompareAndSwap(s, s+n) {
			return s, true
		}
	}
}

// Release gives back n permits and hands them to the waiters at the front.
// It panics when more are given back than are held, as Weighted does: the
// caller's accounting is broken.
func (q *Queue) Release(n int64) {
	for {
		s := q.state.Load()
		if s&hasWaiters != 0 {
			break
		}
		if s < n {
			panic("fifo: released more than held")
		}
		if q.state.CompareAndSwap(s, s-n) {
			return
		}
	}
	q.mu.Lock()
	for {
		// The waiters seen may have left meanwhile (the bit is then
		// clear and others may change state): compare and swap.
		s := q.state.Load()
		if s&^hasWaiters < n {
			q.mu.Unlock()
			panic("fifo: released more than held")
		}
		if q.state.CompareAndSwap(s, s-n) {
			break
		}
	}
	q.notifyLocked()
	q.mu.Unlock()
}

// notifyLocked hands the free permits to the waiters at the front. While
// any wait, state changes only under mu; the last one's removal clears
// hasWaiters after its permit is counted, so TryAcquire cannot take it.
func (q *Queue) notifyLocked() {
	for w := q.head; w != nil && q.size-q.state.Load()&^hasWaiters >= 1; w = q.head {
		q.state.Add(1)
		q.removeLocked(w)
		w.ready <- struct{}{}
	}
}

// Acquire takes one permit, waiting in arrival order behind the callers
// already waiting. It returns nil with the permit; ctx.Err() without one
// when ctx ends first (also when ctx has ended at the call, or by the time
// the permit came, as Weighted does); and [context.DeadlineExceeded]
// without one when bound (if more than 0) passes first, counted from
// start, which the caller read before it called.
func (q *Queue) Acquire(ctx context.Context, start time.Time, bound time.Duration) error {
	done := ctx.Done()
	w := waiters.Get().(*waiter) // taken before the lock: the callers of dbm come here to wait
	q.mu.Lock()
	if done != nil {
		select {
		case <-done:
			q.mu.Unlock()
			waiters.Put(w)
			return ctx.Err()
		default:
		}
	}
	for {
		s := q.state.Load()
		if s&hasWaiters != 0 {
			break // others wait (and no permit is free): queue up behind them
		}
		if q.size-s >= 1 {
			if q.state.CompareAndSwap(s, s+1) {
				q.mu.Unlock()
				waiters.Put(w)
				return nil
			}
			continue
		}
		// None free: say so before queueing, in the same compare and
		// swap, so that a Release racing this one either frees a permit
		// first (the swap fails, and the loop takes it) or sees the bit
		// and waits for mu to hand its permit on.
		if q.state.CompareAndSwap(s, s|hasWaiters) {
			break
		}
	}
	if bound > 0 {
		w.deadline = start.Add(bound)
	}
	q.pushLocked(w)
	q.mu.Unlock()

	if done == nil {
		<-w.ready
	} else {
		select {
		case <-w.ready:
		case <-done:
			q.mu.Lock()
			if w.queued {
				// Leaving frees no permit to hand on: a caller
				// waits only while all are held (Release hands
				// on every one given back), and waits for one.
				q.removeLocked(w)
				q.mu.Unlock()
				recycle(w)
				return ctx.Err()
			}
			q.mu.Unlock()
			<-w.ready // it left the queue meanwhile: its permit, or its deadline
		}
	}
	expired := w.expired
	recycle(w)
	if done != nil {
		select {
		case <-done:
			if !expired {
				q.Release(1)
			}
			return ctx.Err()
		default:
		}
	}
	if expired {
		return context.DeadlineExceeded
	}
	return nil
}

// recycle puts a waiter that left the queue, its ready channel empty,
// back in the pool.
func recycle(w *waiter) {
	*w = waiter{ready: w.ready}
	waiters.Put(w)
}

// Waiting is the number of callers in the queue now.
func (q *Queue) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting
}

// pushLocked appends w to the queue, and to the deadline order if it has
// a deadline, arming the timer if it is not.
func (q *Queue) pushLocked(w *waiter) {
	w.queued = true
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.waiting++
	if w.deadline.IsZero() {
		return
	}
	// From the back: w is nearly always the latest deadline.
	p := q.dtail
	for p != nil && p.deadline.After(w.deadline) {
		p = p.dprev
	}
	w.dprev = p
	if p != nil {
		w.dnext, p.dnext = p.dnext, w
	} else {
		w.dnext, q.dhead = q.dhead, w
	}
	if w.dnext != nil {
		w.dnext.dprev = w
	} else {
		q.dtail = w
	}
	if q.timerAt.IsZero() || w.deadline.Before(q.timerAt) {
		q.armLocked(w.deadline)
	}
}

// removeLocked takes w out of the queue.
func (q *Queue) removeLocked(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	if !w.deadline.IsZero() {
		if w.dprev != nil {
			w.dprev.dnext = w.dnext
		} else {
			q.dhead = w.dnext
		}
		if w.dnext != nil {
			w.dnext.dprev = w.dprev
		} else {
			q.dtail = w.dprev
		}
		w.dprev, w.dnext = nil, nil
	}
	w.queued = false
	q.waiting--
	if q.head == nil {
		q.state.Add(-hasWaiters) // the fast paths may run again
	}
}

// armLocked sets the timer to fire at t. The timer is not stopped when
// the waiter it was armed for gets its permit: it then fires early, finds
// no deadline passed and is armed again for the first waiter's, so a
// queue under load costs a timer operation per bound, not per wait.
func (q *Queue) armLocked(t time.Time) {
	q.timerAt = t
	d := time.Until(t)
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.expire)
		return
	}
	q.timer.Reset(d)
}

// expire ends the waits whose deadline has passed and arms the timer for
// the next deadline, if any.
func (q *Queue) expire() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timerAt = time.Time{}
	now := time.Now()
	for w := q.dhead; w != nil && !w.deadline.After(now); w = q.dhead {
		q.removeLocked(w)
		w.expired = true
		w.ready <- struct{}{}
	}
	if q.dhead != nil {
		q.armLocked(q.dhead.deadline)
	}
}
