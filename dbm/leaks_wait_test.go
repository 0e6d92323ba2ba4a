package dbm_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// noNaturalGC turns the garbage collector's own cycles off until the test
// ends, so that only a collection the manager forces can reclaim a dropped
// resource: without the reclaim on wait, the waits below run into their
// bound instead of being rescued by a collection that happened to come.
func noNaturalGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// newSQLitePool is a manager on an in-memory SQLite database with a pool of
// two connections and the given AcquireTimeout (zero: the default).
func newSQLitePool(t *testing.T, acquire time.Duration, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 2, AcquireTimeout: acquire}
	m, err := dbm.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestReclaimOnWait: a pool of two, both connections held by Rows or a Tx
// the program dropped, and nothing else running that would collect
// garbage: the third call waits, the manager forces a collection, the
// dropped resources give their connections back, and the call succeeds.
// Without the reclaim on wait the call fails with ErrPoolTimeout after the
// default AcquireTimeout (30s), or on the pool path at its context's
// deadline.
func TestReclaimOnWait(t *testing.T) {
	noNaturalGC(t)
	for _, path := range []struct {
		name    string
		acquire time.Duration
	}{{"default AcquireTimeout", 0}, {"NoAcquireTimeout", dbm.NoAcquireTimeout}} {
		for _, leak := range []struct {
			name string
			drop func(t *testing.T, m *dbm.Manager) int
		}{
			{"rows", func(t *testing.T, m *dbm.Manager) int { return dropRows(t, m, "SELECT 1") }},
			{"tx", dropTx},
		} {
			for _, call := range waitingCalls {
				t.Run(path.name+"/"+leak.name+"/"+call.name, func(t *testing.T) {
					m := newSQLitePool(t, path.acquire)
					leak.drop(t, m)
					leak.drop(t, m)
					if s := m.Stats(); s.InUse != 2 {
						t.Fatalf("InUse = %d after dropping two; want 2", s.InUse)
					}
					ctx := context.Background()
					if path.acquire < 0 {
						// The pool path has no bound of its own; a
						// missing reclaim fails here instead of hanging.
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
						defer cancel()
					}
					if err := call.run(ctx, m); err != nil {
						t.Fatalf("third call: %v (the dropped %s were not reclaimed while it waited)", err, leak.name)
					}
					s := m.Stats()
					if s.LeakCollections == 0 || s.LeaksReclaimed == 0 {
						t.Fatalf("LeakCollections = %d, LeaksReclaimed = %d; want both > 0", s.LeakCollections, s.LeaksReclaimed)
					}
					gcUntil(t, "the second dropped resource was not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 2 })
					if leak.name == "tx" && m.Stats().Rollbacks < 2 {
						t.Errorf("Rollbacks = %d; want the two dropped transactions rolled back", m.Stats().Rollbacks)
					}
				})
			}
		}
	}
}

// TestReclaimOnWaitIsRateLimited: a pool held by a transaction that is
// alive (the program still holds it), and callers that keep waiting for a
// connection: a forced collection cannot free anything, and the manager
// does not force one at every wait. The waits end with ErrPoolTimeout,
// whose message names the open transaction and where it was begun.
func TestReclaimOnWaitIsRateLimited(t *testing.T) {
	const wait = 150 * time.Millisecond
	m := newSQLitePool(t, wait)
	m.DB().SetMaxOpenConns(1)
	tx, err := m.BeginTx(context.Background(), nil)
	txLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// 20 waits of 150ms, each a new one: about 3s in all. Forced
	// collections are at least 1s apart, the pause doubling after each
	// that reclaimed nothing (1s, 2s, 4s, ...): in E seconds at most
	// 1 + log2(E+1) of them (3 in 3s), however slow the machine. Without
	// the rate limit, one per wait.
	start := time.Now()
	for i := range 20 {
		var n int
		err := m.Get(context.Background(), &n, "SELECT 1")
		if !errors.Is(err, dbm.ErrPoolTimeout) {
			t.Fatalf("wait %d: %v, want ErrPoolTimeout", i, err)
		}
		if i == 0 {
			if want := fmt.Sprintf("tx opened at leaks_wait_test.go:%d", txLine); !strings.Contains(err.Error(), want) {
				t.Errorf("ErrPoolTimeout message %q does not name %q", err, want)
			}
		}
	}
	elapsed := time.Since(start)
	most := 1 + uint64(math.Log2(elapsed.Seconds()+1))
	if c := m.Stats().LeakCollections; c < 1 || c > most {
		t.Errorf("LeakCollections = %d over %v of waits on a pool held by a live transaction; want 1 to %d", c, elapsed, most)
	}
	if r := m.Stats().LeaksReclaimed; r != 0 {
		t.Errorf("LeaksReclaimed = %d; the transaction is alive", r)
	}
}

// TestNoCollectionWithoutWaiters: resources open a long time, but nobody
// waits for a connection: the manager forces no collection.
func TestNoCollectionWithoutWaiters(t *testing.T) {
	m := newSQLitePool(t, 0)
	rows, err := m.Query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	deadline := time.Now().Add(30 * time.Second)
	for m.LeakCleanupsAttached() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the sweeper ages the rows
	}
	for range 5 { // a few of the sweeper's looks at the pool
		var n int
		if err := m.Get(context.Background(), &n, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := m.Stats().LeakCollections; c != 0 {
		t.Errorf("LeakCollections = %d with a free connection all along; want 0", c)
	}
}

// TestPoolTimeoutNamesTheOldestOpen: the ErrPoolTimeout message names the
// five oldest open resources with their locations and counts the rest.
func TestPoolTimeoutNamesTheOldestOpen(t *testing.T) {
	m := newSQLitePool(t, 100*time.Millisecond)
	m.DB().SetMaxOpenConns(1)
	ctx := context.Background()
	tx, err := m.BeginTx(ctx, nil)
	txLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for range 6 {
		rows, err := tx.Query(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
	}
	var n int
	err = m.Get(ctx, &n, "SELECT 1")
	if !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("Get on a pool held by the transaction: %v, want ErrPoolTimeout", err)
	}
	msg := err.Error()
	if want := fmt.Sprintf("tx opened at leaks_wait_test.go:%d", txLine); !strings.Contains(msg, want) {
		t.Errorf("message %q does not name the oldest, %q", msg, want)
	}
	if got := strings.Count(msg, " opened at "); got != 5 || !strings.Contains(msg, "; and 2 more") {
		t.Errorf("message %q names %d resources; want 5 and \"and 2 more\"", msg, got)
	}
}
