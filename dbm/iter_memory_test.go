package dbm_test

import (
	"context"
	"database/sql"
	"runtime"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// heapGrowth runs loop, which calls sample every so often, and returns the
// largest growth of the live heap seen at a sample: each sample forces a
// collection first, so the figure is what the loop keeps, not garbage, and
// does not depend on timing.
func heapGrowth(loop func(sample func())) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	loop(func() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
			peak = ms.HeapAlloc - base
		}
	})
	return peak
}

const iterRows = 1_000_000

func TestIterStreamsAMillionRowsInFlatMemory(t *testing.T) {
	longTest(t, "streaming a million rows")
	db, err := sql.Open(memdriver.Name, "stream:1000000")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, "mem")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	const limit = 8 << 20

	n := 0
	growth := heapGrowth(func(sample func()) {
		for r, err := range dbm.Iter[benchRow](ctx, m, benchQuery) {
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != int64(n) || r.Nick.Valid != (n%2 == 0) {
				t.Fatalf("row %d = %+v", n, r)
			}
			n++
			if n%100_000 == 0 {
				sample()
			}
		}
	})
	if n != iterRows {
		t.Fatalf("Iter yielded %d rows, want %d", n, iterRows)
	}
	t.Logf("Iter over %d rows: live heap grew by at most %d KiB", n, growth>>10)
	if growth > limit {
		t.Errorf("Iter over %d rows grew the live heap by %d bytes, limit %d", n, growth, limit)
	}

	// The measurement can fail: a loop that keeps its rows is caught long
	// before a million.
	var kept []benchRow
	growth = heapGrowth(func(sample func()) {
		for r, err := range dbm.Iter[benchRow](ctx, m, benchQuery) {
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, r)
			if len(kept)%100_000 == 0 {
				sample()
				if len(kept) == 200_000 {
					break
				}
			}
		}
	})
	if growth <= limit {
		t.Errorf("keeping 200,000 rows grew the heap by only %d bytes; the measurement is broken", growth)
	}
	runtime.KeepAlive(kept)
}
