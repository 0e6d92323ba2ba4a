package dbm

import (
	"context"
	"database/sql"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// BenchmarkPermit is the fair queue's share of a one-row read on a
// bounded pool (BenchmarkScanOneRowQueueShare's x-hand over its
// x-hand-noqueue) alone: a permit taken free, as a read does (enter
// without tracers), and given back.
//
//	go test -run '^$' -bench BenchmarkPermit -count 6 ./dbm
func BenchmarkPermit(b *testing.B) {
	db, err := sql.Open(memdriver.Name, "1")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	m, err := Wrap(db, "mem")
	if err != nil {
		b.Fatal(err)
	}
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
