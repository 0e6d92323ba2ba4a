package fifo

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTryAcquireBehindWaiters: TryAcquire takes no permit while a caller
// waits, also not one just given back (Release hands it to the waiter),
// and takes free ones again once the last waiter has left, however it
// left: with a permit, cancelled or past its bound. (The lock-free fast
// paths of TryAcquire and Release must see the waiters.)
func TestTryAcquireBehindWaiters(t *testing.T) {
	q := New(2)
	if !q.TryAcquire(2) {
		t.Fatal("TryAcquire(2) on a free queue of 2 failed")
	}
	res, order := queueUp(t, q, 2, background, 0)
	q.Release(1) // to the first waiter
	if q.TryAcquire(1) {
		t.Fatal("TryAcquire took the permit given back to a waiter")
	}
	if err := recv(t, res[0]); err != nil {
		t.Fatal(err)
	}
	if q.TryAcquire(1) || q.Waiting() != 1 {
		t.Fatalf("TryAcquire overtook a waiter (%d waiting)", q.Waiting())
	}
	q.Release(2) // one to the second waiter, one free
	if err := recv(t, res[1]); err != nil {
		t.Fatal(err)
	}
	if got := order(); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("served in order %v", got)
	}
	if !q.TryAcquire(1) {
		t.Fatal("a free permit not taken after the last waiter left with its permit")
	}
	if q.TryAcquire(1) {
		t.Fatal("a permit more than the size")
	}

	// All 2 held again. A waiter that is cancelled, then one whose bound
	// passes, leave the queue without a permit: then the fast paths work.
	ctx, cancel := context.WithCancel(context.Background())
	res, _ = queueUp(t, q, 1, func(int) context.Context { return ctx }, 0)
	cancel()
	if err := recv(t, res[0]); err == nil {
		t.Fatal("a cancelled waiter got a permit")
	}
	q.Release(1)
	if !q.TryAcquire(1) {
		t.Fatal("a free permit not taken after the last waiter was cancelled")
	}
	// No permit is free, so it queues (queueUp could miss it there: its
	// bound may pass before it looks).
	bounded := make(chan error, 1)
	go func() { bounded <- q.Acquire(context.Background(), time.Now(), time.Millisecond) }()
	if err := recv(t, bounded); err != context.DeadlineExceeded {
		t.Fatalf("bounded waiter: %v", err)
	}
	q.Release(2)
	if !q.TryAcquire(2) {
		t.Fatal("free permits not taken after the last waiter's bound passed")
	}
	q.Release(2)
}

// recv is the result a waiter of queueUp sends; the test fails when it
// never comes (a hang, not a timing: a permit given back never reached it).
func recv(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("a waiter never got its permit nor an error")
		return nil
	}
}

// TestFastPathsRaceWaiters: callers taking and giving back permits without
// waiting (TryAcquire(1), and TryAcquire(n)/Release(n) as a resize does)
// race callers that wait, unbounded, cancelled or bounded. No permit is
// lost or made (never more held than the size; all free at the end), and
// no waiter sleeps through a permit given back: the unbounded waiters,
// whose only way out is a permit, all get one (run with -race).
func TestFastPathsRaceWaiters(t *testing.T) {
	const size, fast, waiting, rounds = 3, 4, 8, 400
	q := New(size)
	var held, maxHeld atomic.Int64
	use := func(n int64) {
		if h := held.Add(n); h > size {
			maxHeld.Store(h)
		}
		if rand.IntN(2) == 0 {
			runtime.Gosched()
		}
		held.Add(-n)
		q.Release(n)
	}
	stop := make(chan struct{})
	var fwg, wg sync.WaitGroup
	for range fast {
		fwg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int64(1)
				if rand.IntN(8) == 0 {
					n = 1 + rand.Int64N(size)
				}
				if q.TryAcquire(n) {
					use(n)
				}
				if rand.IntN(4) == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	for c := range waiting {
		wg.Go(func() {
			for r := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				bound := time.Duration(0)
				switch (c + r) % 4 {
				case 1:
					go cancel()
				case 2:
					bound = time.Duration(rand.IntN(100)) * time.Microsecond
				}
				if err := q.Acquire(ctx, time.Now(), bound); err == nil {
					use(1)
				} else if (c+r)%4 == 0 || (c+r)%4 == 3 {
					t.Errorf("an unbounded wait ended without a permit: %v", err)
				}
				cancel()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a hang, not a timing: a wakeup was lost
		close(stop)
		t.Fatalf("waiters never woke: %d waiting, %d held", q.Waiting(), held.Load())
	}
	close(stop)
	fwg.Wait()
	checkAfterRun(t, q, size, maxHeld.Load())
}

// checkAfterRun fails t when more than size permits were held at once
// during a run (over: the most held above size, 0 if never) or when the
// queue, idle now, lost or made a permit.
func checkAfterRun(t *testing.T, q *Queue, size, over int64) {
	t.Helper()
	if over > 0 {
		t.Errorf("%d permits held at once, size %d", over, size)
	}
	if q.Waiting() != 0 || !q.TryAcquire(size) {
		t.Fatalf("after the run: %d waiting, or permits lost", q.Waiting())
	}
	if q.TryAcquire(1) {
		t.Fatal("a permit more than the size")
	}
}
