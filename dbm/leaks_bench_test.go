package dbm_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// BenchmarkLeakTracking measures what tracking costs per resource: Query and
// Close (one tracked Rows) and BeginTx and Rollback (one tracked Tx) on the
// in-memory driver, with tracking on (impl=on, the default) and off (impl=off,
// [dbm.WithLeakTracking](false)), serially and from parallel goroutines.
//
//	go test -run '^$' -bench BenchmarkLeakTracking -benchmem -count 10 ./dbm | benchstat -col /impl -
func BenchmarkLeakTracking(b *testing.B) {
	ctx := context.Background()
	for _, tracking := range []bool{false, true} {
		db := benchDB(b, 1)
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		m, err := dbm.Wrap(db, "mem", dbm.WithLeakTracking(tracking))
		if err != nil {
			b.Fatal(err)
		}
		name := map[bool]string{false: "off", true: "on"}[tracking]
		query := func() error {
			rows, err := m.Query(ctx, benchQuery+" LIMIT 1")
			if err != nil {
				return err
			}
			return rows.Close()
		}
		tx := func() error {
			tx, err := m.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			return tx.Rollback()
		}
		for _, op := range []struct {
			name string
			fn   func() error
		}{{"Query+Close", query}, {"BeginTx+Rollback", tx}} {
			b.Run("op="+op.name+"/mode=serial/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := op.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op="+op.name+"/mode=parallel/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := op.fn(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		if leaks := m.Leaks(); len(leaks) != 0 {
			b.Fatalf("leaks after the benchmark: %v", leaks)
		}
	}
}

// cleanupTarget stands in for a Rows wrapper: a fresh heap object per
// iteration, as every Query allocates one.
type cleanupTarget struct {
	_ [7]uintptr
}

// cleanupSink keeps the fresh objects on the heap.
var cleanupSink atomic.Pointer[cleanupTarget]

// BenchmarkAddCleanupFloor measures the runtime primitive issue 4 mandates,
// alone: runtime.AddCleanup on a fresh object and Cleanup.Stop when it is
// closed (impl=cleanup), against allocating the object only (impl=alloc).
// The difference is what every tracked resource paid when the cleanup was
// attached at open; now only resources open for the sweep age pay it (see
// leaksweep.go and docs/leaks.md).
//
//	go test -run '^$' -bench 'AddCleanupFloor' -benchmem -count 8 ./dbm | benchstat -col /impl -
func BenchmarkAddCleanupFloor(b *testing.B) {
	arg := new(int)
	for _, mode := range []string{"serial", "parallel"} {
		for _, impl := range []string{"alloc", "cleanup"} {
			once := func() *cleanupTarget {
				p := new(cleanupTarget)
				if impl == "cleanup" {
					c := runtime.AddCleanup(p, func(*int) {}, arg)
					c.Stop()
				}
				return p
			}
			b.Run("mode="+mode+"/impl="+impl, func(b *testing.B) {
				b.ReportAllocs()
				if mode == "serial" {
					var last *cleanupTarget
					for b.Loop() {
						last = once()
					}
					cleanupSink.Store(last)
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					var last *cleanupTarget
					for pb.Next() {
						last = once()
					}
					cleanupSink.Store(last)
				})
			})
		}
	}
}
