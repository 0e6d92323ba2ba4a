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

// TestRacingEndsWhileResizing: cancels, bound expiries, releases and
// resizes (TryAcquire(n)/Release(n), as dbm's follow does) racing never
// lose or duplicate a permit, and no waiter sleeps while one is free.
func TestRacingEndsWhileResizing(t *testing.T) {
	const size, callers, rounds = 4, 16, 300
	q := New(size)
	var held, maxHeld atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Go(func() { // take and give back up to 2 permits, never waiting
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := int64(1 + rand.IntN(2))
			if q.TryAcquire(n) {
				h := held.Add(n)
				if h > size {
					maxHeld.Store(h)
				}
				runtime.Gosched()
				held.Add(-n)
				q.Release(n)
			}
			runtime.Gosched()
		}
	})
	for range callers {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				switch rand.IntN(4) {
				case 0:
					go cancel()
				case 1:
					time.AfterFunc(time.Duration(rand.IntN(100))*time.Microsecond, cancel)
				}
				bound := time.Duration(0)
				if rand.IntN(2) == 0 {
					bound = time.Duration(rand.IntN(200)) * time.Microsecond
				}
				start := time.Now()
				if rand.IntN(8) == 0 {
					start = start.Add(-time.Millisecond) // a deadline already past
				}
				err := q.Acquire(ctx, start, bound)
				if err == nil {
					if h := held.Add(1); h > size {
						maxHeld.Store(h)
					}
					runtime.Gosched()
					held.Add(-1)
					q.Release(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	checkAfterRun(t, q, size, maxHeld.Load())
}
