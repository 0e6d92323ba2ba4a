package dbmotel_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmotel"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
)

// dropSpans is a span processor that drops every span: the "no-op
// exporter" of the overhead benchmark. Spans are still sampled, made,
// given their attributes and events, and ended; only exporting is left out.
type dropSpans struct{}

func (dropSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (dropSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (dropSpans) Shutdown(context.Context) error                  { return nil }
func (dropSpans) ForceFlush(context.Context) error                { return nil }

// noopExport returns a Tracer over a real SDK TracerProvider (with sampler,
// spans dropped at the end) and a real MeterProvider whose ManualReader is
// never read (every measurement is still aggregated).
func noopExport(b *testing.B, cfg dbm.Config, sampler sdktrace.Sampler) *dbmotel.Tracer {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(dropSpans{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return newBenchTracer(b, cfg, tp, true)
}

// newBenchTracer returns a Tracer over tp and, with sdkMetrics, a real
// MeterProvider whose ManualReader is never read; otherwise OpenTelemetry's
// no-op MeterProvider.
func newBenchTracer(b *testing.B, cfg dbm.Config, tp trace.TracerProvider, sdkMetrics bool) *dbmotel.Tracer {
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	if sdkMetrics {
		sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		mp = sdk
	}
	ot, err := dbmotel.New(dbmotel.WithConfig(cfg), dbmotel.WithTracerProvider(tp), dbmotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	return ot
}

// BenchmarkOtelPointSelect is issue 20's overhead goal: a primary-key
// lookup of one row with dbm.Manager.Get, on a manager without a tracer
// (impl=plain) and with dbmotel reporting to a no-op exporter (impl=otel),
// on in-memory SQLite and on PostgreSQL (lib/pq; skipped without a server).
// impl=unsampled is dbmotel with a sampler that records no span (what most
// statements cost under a low sampling ratio): only the metrics remain.
// impl=metrics has OpenTelemetry's no-op TracerProvider (no span is made)
// and the SDK's metrics; impl=noop has no-op providers for both, which
// leaves dbmotel's own work and the API calls.
//
//	go test -run '^$' -bench OtelPointSelect -benchmem -count 6 ./dbm/dbmotel | benchstat -col /impl -
func BenchmarkOtelPointSelect(b *testing.B) {
	for _, db := range []struct {
		name   string
		config func(b *testing.B) dbm.Config
	}{
		{"sqlite", func(*testing.B) dbm.Config { return dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"} }},
		{"postgres", func(b *testing.B) dbm.Config {
			host, port := conformance.PostgresAddr(b)
			return dbm.Config{Host: host, Port: port, User: "postgres", Database: "test", SSLMode: "disable",
				Params: map[string]string{"application_name": "dbmotel_bench"}}
		}},
	} {
		b.Run("db="+db.name, func(b *testing.B) {
			cfg := db.config(b)
			for _, impl := range []string{"plain", "otel", "unsampled", "metrics", "noop"} {
				var opts []dbm.Option
				switch impl {
				case "otel":
					opts = append(opts, dbm.WithTracer(noopExport(b, cfg, sdktrace.AlwaysSample())))
				case "unsampled":
					opts = append(opts, dbm.WithTracer(noopExport(b, cfg, sdktrace.NeverSample())))
				case "metrics":
					opts = append(opts, dbm.WithTracer(newBenchTracer(b, cfg, tracenoop.NewTracerProvider(), true)))
				case "noop":
					opts = append(opts, dbm.WithTracer(newBenchTracer(b, cfg, tracenoop.NewTracerProvider(), false)))
				}
				b.Run("impl="+impl, func(b *testing.B) { benchPointSelect(b, cfg, opts...) })
			}
		})
	}
}

func benchPointSelect(b *testing.B, cfg dbm.Config, opts ...dbm.Option) {
	ctx := context.Background()
	m, err := dbm.New(ctx, cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tbl := fmt.Sprintf("dbmotel_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := m.Exec(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, name VARCHAR(20))"); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = m.Exec(context.Background(), "DROP TABLE "+tbl) }()
	for i := range 100 {
		if _, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id, name) VALUES (?, ?)", i, fmt.Sprint("name", i)); err != nil {
			b.Fatal(err)
		}
	}
	q := "SELECT name FROM " + tbl + " WHERE id = ?"
	b.ReportAllocs()
	i := 0
	cpu, user := cpuTime(), userTime()
	for b.Loop() {
		var name string
		if err := m.Get(ctx, &name, q, i%100); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// The process's CPU time per operation: it does not count time spent
	// waiting for a core (or, for PostgreSQL, the server's work), so it
	// varies far less than the time on a shared machine.
	if end := cpuTime(); cpu >= 0 && end >= cpu && b.N > 0 {
		b.ReportMetric(float64(end-cpu)/float64(b.N), "cpu-ns/op")
	}
	if end := userTime(); user >= 0 && end >= user && b.N > 0 {
		b.ReportMetric(float64(end-user)/float64(b.N), "user-ns/op")
	}
}
