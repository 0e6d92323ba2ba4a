package dbm

import (
	"context"
	"testing"
)

// BenchmarkPermit is the fair queue's share of a one-row read on a
// bounded pool (BenchmarkScanOneRowQueueShare's x-hand over its
// x-hand-noqueue) alone: a permit taken free, as a read does (enter
// without tracers), and given back.
//
//	go test -run '^$' -bench BenchmarkPermit -count 6 ./dbm
func BenchmarkPermit(b *testing.B) {
	_, m := wrapMemPool(b, 4, DefaultAcquireTimeout)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		use, err := m.enter(ctx, "query", "SELECT 1")
		if err != nil {
			b.Fatal(err)
		}
		use.end(ctx)
		m.queue.give()
	}
}
