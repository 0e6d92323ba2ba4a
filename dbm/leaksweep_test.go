package dbm_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Resources closed before a sweep reaches them never get a cleanup: only
// those open for the sweep age do, once.
func TestLeakSweepAttachesOnlyToLongLived(t *testing.T) {
	ctx := context.Background()
	m := newMem(t, 1, dbm.WithoutLeakSweeper())
	before := time.Now()
	for range 50 {
		rows, err := m.Query(ctx, "SELECT id FROM users")
		if err != nil {
			t.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	held, err := m.Query(ctx, "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	heldTx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SweepLeaksAt(before) // everything opened after it: too young
	if n := m.LeakCleanupsAttached(); n != 0 {
		t.Fatalf("a sweep before any resource was old enough attached %d cleanups, want 0", n)
	}
	m.SweepLeaksAt(time.Now().Add(time.Hour))
	if n := m.LeakCleanupsAttached(); n != 2 {
		t.Fatalf("after a sweep past the age: %d cleanups attached, want 2 (the open rows and tx only)", n)
	}
	m.SweepLeaksAt(time.Now().Add(2 * time.Hour))
	if n := m.LeakCleanupsAttached(); n != 2 {
		t.Fatalf("a second sweep: %d cleanups attached in all, want still 2", n)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if err := heldTx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if leaks := m.Leaks(); len(leaks) != 0 {
		t.Fatalf("Leaks() = %v after closing everything", leaks)
	}
}

// dropWeak opens rows, loses them, and returns a weak pointer to them.
//
//go:noinline
func dropWeak(t *testing.T, m *dbm.Manager) weak.Pointer[dbm.Rows] {
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	return weak.Make(rows)
}

// Until a sweep has seen it, the registry holds a young Rows; the sweep
// lets go of it, so that the garbage collector finds it dropped and the
// cleanup gives the connection back.
func TestLeakSweepLetsGoOfTheWrapper(t *testing.T) {
	m := newMem(t, 1, dbm.WithoutLeakSweeper())
	wp := dropWeak(t, m)
	for range 3 {
		runtime.GC()
	}
	if wp.Value() == nil {
		t.Fatal("the young rows were collected before any sweep (the registry does not hold them)")
	}
	if s := m.Stats(); s.LeaksReclaimed != 0 || s.InUse != 1 {
		t.Fatalf("before the sweep: LeaksReclaimed = %d, InUse = %d; want 0 and 1", s.LeaksReclaimed, s.InUse)
	}
	m.SweepLeaksAt(time.Now().Add(time.Hour))
	gcUntil(t, "the swept rows were not collected and reclaimed", func() bool {
		s := m.Stats()
		return wp.Value() == nil && s.LeaksReclaimed == 1 && s.InUse == 0
	})
	if leaks := m.Leaks(); len(leaks) != 0 {
		t.Fatalf("Leaks() = %v after the reclaim", leaks)
	}
}

// The background sweeper alone, without the test hook, gets dropped rows
// and a dropped transaction reclaimed. The bound is generous: the sweeper
// attaches the cleanups within about 150 ms.
func TestLeakBackgroundSweeperReclaims(t *testing.T) {
	m := newMem(t, 1)
	dropRows(t, m, "SELECT id FROM users")
	dropTx(t, m)
	gcUntil(t, "the background sweeper did not get the dropped rows and tx reclaimed", func() bool {
		s := m.Stats()
		return s.LeaksReclaimed == 2 && s.InUse == 0
	})
	if n := m.LeakCleanupsAttached(); n != 2 {
		t.Fatalf("%d cleanups attached, want 2", n)
	}
}

// The sweeper runs only while there are young resources: once everything
// is closed it stops, so an idle manager (or one never closed) keeps no
// goroutine of its own.
func TestLeakSweeperStopsWhenIdle(t *testing.T) {
	ctx := context.Background()
	m := newMem(t, 1)
	// database/sql's own goroutines for the pool are there already.
	ignore := goleak.IgnoreCurrent()
	rows, err := m.Query(ctx, "SELECT id FROM users") // starts the sweeper
	if err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	// goleak retries for a while; the sweeper stops at its next tick.
	goleak.VerifyNone(t, ignore)
}
