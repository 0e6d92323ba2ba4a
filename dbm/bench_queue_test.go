package dbm_test

import (
	"context"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// BenchmarkFairQueueOverload is the fair queue's handoff under overload
// without a server: 64 callers (32 per core) share a pool of 4 connections
// of the in-memory driver, each fetching one row, so nearly every call
// waits for its turn and is woken by the call before it. impl=sql is
// database/sql alone (QueryRowContext and Scan: callers wait in its pool
// and are handed a connection at random), impl=dbm the manager's Get with
// the default acquire bound (callers wait in the fair queue). Besides wall
// time it reports the process's CPU time per call (cpu-ns/op), which
// waiting for a core does not inflate, and the share of calls that waited
// for a connection (waits/op).
//
//	go test -run '^$' -bench BenchmarkFairQueueOverload -benchmem -count 6 ./dbm | benchstat -col /impl -
func BenchmarkFairQueueOverload(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b, 1)
	m, err := dbm.Wrap(db, "mem", dbm.WithAcquireTimeout(dbm.DefaultAcquireTimeout))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		call  func(r *benchRow) error
		waits func() int64 // waits for a connection so far
	}{
		{"sql", func(r *benchRow) error {
			return db.QueryRowContext(ctx, benchQuery).Scan(&r.ID, &r.Name, &r.Email, &r.Active, &r.CreatedAt, &r.Score, &r.Nick, &r.Age)
		}, func() int64 { return db.Stats().WaitCount }},
		{"dbm", func(r *benchRow) error { return m.Get(ctx, r, benchQuery) },
			func() int64 { return m.Stats().WaitCount }}, // the queue's and the pool's
	} {
		b.Run("impl="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(32)
			defer reportCPU(b)()
			w0 := c.waits()
			defer func() { b.ReportMetric(float64(c.waits()-w0)/float64(b.N), "waits/op") }()
			b.RunParallel(func(pb *testing.PB) {
				var r benchRow
				for pb.Next() {
					if err := c.call(&r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
