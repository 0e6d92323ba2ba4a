package dbm

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// wrapMemPool wraps a pool of the in-memory driver bounded to maxOpen, with
// the acquire timeout acquire; both are closed when t ends.
func wrapMemPool(t testing.TB, maxOpen int, acquire time.Duration) (*sql.DB, *Manager) {
	t.Helper()
	db, err := sql.Open(memdriver.Name, "1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(maxOpen)
	m, err := Wrap(db, "mem", WithAcquireTimeout(acquire))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return db, m
}

// owedQueue is a manager over a pool of 4 whose 4 permits are held (taken
// as a statement takes them), and whose bound is then lowered to 2 on
// Manager.DB and followed: none is free, so the queue owes 2.
func owedQueue(t *testing.T, acquire time.Duration) (*Manager, *connQueue) {
	t.Helper()
	db, m := wrapMemPool(t, 4, acquire)
	cq := m.queue
	for i := range 4 {
		if waited, err := m.permit(t.Context(), "query", ""); waited || err != nil {
			t.Fatalf("permit %d of 4: waited %v, %v", i, waited, err)
		}
	}
	db.SetMaxOpenConns(2)
	m.followPool()
	if o := cq.owed.Load(); o != 2 {
		t.Fatalf("owed = %d after lowering the bound from 4 (all held) to 2, want 2", o)
	}
	return m, cq
}

// TestPermitTakenWhileOwedIsGivenBack: a give that read owed before a
// resize added to it releases its permit to the semaphore instead of
// keeping it (give and follow are not atomic together), so permits can be
// free while the queue owes some: the callers then hold more than the
// new bound allows. Such a stray permit must pay what is owed, not let a
// caller past the bound, where it would wait inside database/sql, past
// AcquireTimeout. The race is made here by hand: two holders give back
// as a give that read owed = 0 just before follow's Add does.
func TestPermitTakenWhileOwedIsGivenBack(t *testing.T) {
	m, cq := owedQueue(t, 50*time.Millisecond)
	cq.sem.Release(1) // two holders' give, each having read owed = 0
	cq.sem.Release(1)
	// 2 held, 2 owed, 2 free: the bound is 2, and it is reached.
	waited, err := m.permit(t.Context(), "query", "")
	if err == nil {
		t.Fatalf("a third permit on a bound of 2 (waited %v): the caller is past the bound", waited)
	}
	if !errors.Is(err, ErrPoolTimeout) {
		t.Fatalf("permit = %v, want ErrPoolTimeout", err)
	}
}

// TestWaiterHandedAPermitWhileOwedWaitsAgain: the same race with a
// caller waiting: the stray permit is handed to it by Release. It is
// over the new bound and has not used its connection: it gives the
// permit back (to what is owed) and waits again. (The acquire timeout is
// long and the test ends the second wait itself, so that a slow machine
// cannot end the first one before the permit comes.)
func TestWaiterHandedAPermitWhileOwedWaitsAgain(t *testing.T) {
	m, cq := owedQueue(t, time.Hour)
	// Bound 2 with 4 held: the next caller waits; a holder's give that
	// read owed = 0 (as above) hands it a permit while 2 are owed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := m.permit(ctx, "query", "")
		done <- err
	}()
	waitQueued := func(step string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("%s: the caller left the queue: %v", step, err)
			case <-time.After(time.Millisecond):
			}
		}
	}
	waitQueued("first wait", func() bool { return cq.sem.Waiting() == 1 })
	cq.sem.Release(1)
	// With the fix it pays one owed permit and queues again; before, it
	// returned with the permit (4 held on a bound of 2).
	waitQueued("handed a stray permit", func() bool { return cq.owed.Load() == 1 && cq.sem.Waiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the second wait, cancelled: %v, want context.Canceled", err)
	}
	if w := cq.waitingNow(); w != 0 {
		t.Fatalf("QueueLength %d after the wait ended, want 0", w)
	}
}

// TestPermitsRaceResizes: callers take permits (waiting when none is
// free, under a bound) and give them back while the pool's bound changes
// on Manager.DB among 1, 3, 8 and unlimited. When all have finished, the
// queue holds exactly the permits beyond its bound (queueCap-size-owed):
// none lost, none made, and no caller is still counted as waiting.
func TestPermitsRaceResizes(t *testing.T) {
	db, m := wrapMemPool(t, 3, time.Millisecond)
	cq := m.queue
	stop := make(chan struct{})
	var resizer sync.WaitGroup
	resizer.Go(func() {
		bounds := []int{1, 3, 8, 0}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			db.SetMaxOpenConns(bounds[i%len(bounds)])
			m.followPool()
			runtime.Gosched()
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				if _, err := m.permit(context.Background(), "query", ""); err == nil {
					runtime.Gosched()
					cq.give()
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	resizer.Wait()
	held, _ := cq.sem.TryAcquireHeld(0)
	if want := queueCap - cq.size.Load() - cq.owed.Load(); held != want || cq.waitingNow() != 0 || cq.sem.Waiting() != 0 {
		t.Fatalf("idle queue: %d permits held, want %d (size %d, owed %d); %d waiting", held, want, cq.size.Load(), cq.owed.Load(), cq.sem.Waiting())
	}
}
