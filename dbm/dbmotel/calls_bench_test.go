package dbmotel_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// BenchmarkTracerCalls is what dbmotel adds to one point select outside a
// transaction, without the database: the calls the manager makes on its
// tracer (wait start and end, statement start and end, release), on the
// no-op exporter of BenchmarkOtelPointSelect, for a call that found a
// connection free (no wait span). It isolates the tracer's own cost from
// the database's, for profiling.
func BenchmarkTracerCalls(b *testing.B) {
	for _, db := range []struct {
		name string
		cfg  dbm.Config
	}{
		{"sqlite", dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}},
		// What BenchmarkOtelPointSelect's PostgreSQL manager carries: with
		// server.address, server.port and db.namespace, two more
		// attributes on each span and operation duration. No server is
		// needed: the tracer only reads the configuration.
		{"postgres", dbm.Config{Host: "127.0.0.1", Port: 5432, User: "postgres", Database: "test"}},
	} {
		for _, impl := range []struct {
			name    string
			sampler sdktrace.Sampler
		}{{"otel", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.NeverSample()}} {
			b.Run("db="+db.name+"/impl="+impl.name, func(b *testing.B) { benchTracerCalls(b, db.cfg, impl.sampler) })
		}
	}
}

func benchTracerCalls(b *testing.B, cfg dbm.Config, sampler sdktrace.Sampler) {
	ot := noopExport(b, cfg, sampler)
	ctx := context.Background()
	op := dbm.TraceOp{Name: dbm.TraceQuery, Statement: "SELECT name FROM t WHERE id = ?", Attempt: 1}
	acq := dbm.TraceOp{Name: "query", Statement: op.Statement}
	res := dbm.TraceResult{Duration: 3 * time.Microsecond, Rows: 1}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		ot.TraceAcquireStart(ctx, acq)
		ot.TraceAcquire(ctx, acq, dbm.TraceResult{Duration: time.Microsecond, Rows: -1})
		sctx := ot.Start(ctx, op)
		ot.End(sctx, op, res)
		ot.TraceRelease(ctx, acq, dbm.TraceResult{Duration: 5 * time.Microsecond, Rows: -1})
	}
	if end := cpuTime(); cpu >= 0 && end >= cpu && b.N > 0 {
		b.ReportMetric(float64(end-cpu)/float64(b.N), "cpu-ns/op")
	}
}
