package fifo

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds; a test fails only when it never does
// (nothing here asserts how fast anything is).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// queueUp starts n callers of Acquire one after another, each once the one
// before it is in the queue, and returns their results in arrival order
// (each channel gets one error) and the order in which they got a permit.
func queueUp(t *testing.T, q *Queue, n int, ctxOf func(i int) context.Context, bound time.Duration) ([]chan error, func() []int) {
	t.Helper()
	var mu sync.Mutex
	var order []int
	res := make([]chan error, n)
	base := q.Waiting()
	for i := range n {
		res[i] = make(chan error, 1)
		go func() {
			err := q.Acquire(ctxOf(i), time.Now(), bound)
			if err == nil {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			}
			res[i] <- err
		}()
		waitFor(t, "a caller never queued", func() bool { return q.Waiting() == base+i+1 })
	}
	return res, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), order...)
	}
}

func background(int) context.Context { return context.Background() }

// TestServesInArrivalOrder: permits given back one at a time go to the
// waiters in the order they came, with and without a bound, and a caller
// that arrives while others wait does not take a free permit ahead of
// them.
func TestServesInArrivalOrder(t *testing.T) {
	for _, bound := range []time.Duration{0, time.Hour} {
		t.Run(bound.String(), func(t *testing.T) {
			const n = 16
			q := New(1)
			if !q.TryAcquire(1) {
				t.Fatal("TryAcquire on a free queue failed")
			}
			res, served := queueUp(t, q, n, background, bound)
			for i := range n {
				q.Release(1)
				if err := <-res[i]; err != nil {
					t.Fatalf("waiter %d: %v", i, err)
				}
				if i < n-1 && q.TryAcquire(1) {
					t.Fatal("TryAcquire took a permit while others waited")
				}
			}
			q.Release(1)
			for i, got := range served() {
				if got != i {
					t.Fatalf("served in the order %v, want arrival order", served())
				}
			}
			if !q.TryAcquire(1) || q.Waiting() != 0 {
				t.Fatalf("after the waits: permit not free or %d still waiting", q.Waiting())
			}
		})
	}
}

// TestBoundEndsTheWait: waiters with a bound get context.DeadlineExceeded
// when it passes and leave the permits alone; the waiters without a bound,
// or with a later one, stay in the queue in their order. The timer armed
// for a waiter that is served first fires early and is armed again for
// the next deadline.
func TestBoundEndsTheWait(t *testing.T) {
	q := New(1)
	q.TryAcquire(1)
	started := func(bound time.Duration) (chan error, time.Time) {
		c, start := make(chan error, 1), time.Now()
		go func() { c <- q.Acquire(context.Background(), start, bound) }()
		return c, start
	}
	a, aStart := started(time.Hour)
	waitFor(t, "a never queued", func() bool { return q.Waiting() == 1 })
	b, bStart := started(2 * time.Hour)
	waitFor(t, "b never queued", func() bool { return q.Waiting() == 2 })
	timerAt := func() time.Time { q.mu.Lock(); defer q.mu.Unlock(); return q.timerAt }
	if got := timerAt(); !got.Equal(aStart.Add(time.Hour)) {
		t.Fatalf("timer armed for %v, want a's deadline", got)
	}
	q.Release(1) // to a, before its deadline
	if err := <-a; err != nil {
		t.Fatalf("a: %v", err)
	}
	q.expire() // the timer armed for a fires
	if got := timerAt(); !got.Equal(bStart.Add(2*time.Hour)) || q.Waiting() != 1 {
		t.Fatalf("after a's timer: armed for %v (want b's deadline), %d waiting (want b)", got, q.Waiting())
	}
	// Three waits with a short bound, and one without a bound behind
	// them; each is either in the queue or over before the next starts.
	t0 := time.Now()
	short := make([]chan error, 3)
	for i := range short {
		short[i] = make(chan error, 1)
		go func() { short[i] <- q.Acquire(context.Background(), t0, 20*time.Millisecond) }()
		waitFor(t, "a short wait never queued", func() bool {
			ended := 0
			for _, c := range short[:i+1] {
				ended += len(c)
			}
			return q.Waiting()+ended == 2+i
		})
	}
	unbounded, _ := started(0)
	for i, c := range short {
		if err := <-c; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("short wait %d: %v, want context.DeadlineExceeded", i, err)
		}
	}
	waitFor(t, "the unbounded caller never queued", func() bool { return q.Waiting() == 2 })
	q.Release(1)
	if err := <-b; err != nil {
		t.Fatalf("b: %v", err)
	}
	select {
	case err := <-unbounded:
		t.Fatalf("unbounded caller served before b gave back: %v", err)
	default:
	}
	q.Release(1)
	if err := <-unbounded; err != nil {
		t.Fatalf("unbounded caller: %v", err)
	}
	q.Release(1)
	if !q.TryAcquire(1) {
		t.Fatal("a permit was lost")
	}
}

// TestDeadlineOrderBeatsArrival: a caller that read the clock before the
// one ahead of it in the queue (it lost the race for the lock) has the
// earlier deadline, and its wait ends first.
func TestDeadlineOrderBeatsArrival(t *testing.T) {
	q := New(1)
	q.TryAcquire(1)
	early := time.Now()
	late := make(chan error, 1)
	go func() { late <- q.Acquire(context.Background(), time.Now(), time.Hour) }()
	waitFor(t, "never queued", func() bool { return q.Waiting() == 1 })
	first := make(chan error, 1)
	go func() { first <- q.Acquire(context.Background(), early, 20*time.Millisecond) }()
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller with the earlier deadline: %v", err)
	}
	if q.Waiting() != 1 {
		t.Fatalf("%d waiting, want the caller with the later deadline", q.Waiting())
	}
	q.Release(1)
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	q.Release(1)
}

// TestContextEndsTheWait: a caller whose context ends leaves the queue
// without a permit and without taking the place of another; one whose
// context has ended at the call gets ctx.Err() even with a permit free.
func TestContextEndsTheWait(t *testing.T) {
	q := New(1)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Acquire(done, time.Now(), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context, free permit: %v, want context.Canceled", err)
	}
	q.TryAcquire(1)
	ctxs := make([]context.Context, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range ctxs {
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
		defer cancels[i]()
	}
	res, served := queueUp(t, q, 3, func(i int) context.Context { return ctxs[i] }, time.Hour)
	cancels[1]()
	if err := <-res[1]; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	q.Release(1)
	if err := <-res[0]; err != nil {
		t.Fatal(err)
	}
	q.Release(1)
	if err := <-res[2]; err != nil {
		t.Fatal(err)
	}
	if got := served(); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("served %v, want [0 2]", got)
	}
	q.Release(1)
	if !q.TryAcquire(1) {
		t.Fatal("a permit was lost")
	}
}

// TestResize: n permits at once are taken without waiting and given back
// to the waiters, as the dbm queue does to follow the pool's bound.
func TestResize(t *testing.T) {
	q := New(10)
	if !q.TryAcquire(10) {
		t.Fatal("TryAcquire(10) on a free queue of 10 failed")
	}
	if q.TryAcquire(1) {
		t.Fatal("TryAcquire on a full queue succeeded")
	}
	res, _ := queueUp(t, q, 3, background, 0)
	q.Release(3)
	for i, c := range res {
		if err := <-c; err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
	}
	q.Release(10)
	if !q.TryAcquire(10) {
		t.Fatal("permits were lost")
	}
	defer func() {
		if recover() == nil {
			t.Error("Release of more than held did not panic")
		}
	}()
	q.Release(11)
}

// TestRacingEnds: waits ended by a cancel, by the bound and by a permit at
// about the same time never lose or duplicate a permit (run with -race).
func TestRacingEnds(t *testing.T) {
	const size, callers, rounds = 3, 24, 200
	q := New(size)
	var held, maxHeld int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for r := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if (c+r)%5 == 0 {
					go cancel()
				}
				bound := time.Duration(0)
				if (c+r)%3 == 0 {
					bound = time.Duration(r%4) * 50 * time.Microsecond
				}
				if err := q.Acquire(ctx, time.Now(), bound); err == nil {
					mu.Lock()
					held++
					maxHeld = max(maxHeld, held)
					mu.Unlock()
					runtime.Gosched()
					mu.Lock()
					held--
					mu.Unlock()
					q.Release(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if maxHeld > size {
		t.Errorf("%d permits held at once, size %d", maxHeld, size)
	}
	if q.Waiting() != 0 || !q.TryAcquire(size) {
		t.Fatalf("after the run: %d waiting, or permits lost", q.Waiting())
	}
}
