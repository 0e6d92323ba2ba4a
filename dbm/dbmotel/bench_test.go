package dbmotel_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
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
	for _, db := range pointSelectDBs {
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

// pointSelectDBs are the databases of the point-select benchmarks.
var pointSelectDBs = []struct {
	name   string
	config func(b *testing.B) dbm.Config
}{
	{"sqlite", func(*testing.B) dbm.Config { return dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"} }},
	{"postgres", func(b *testing.B) dbm.Config {
		host, port := conformance.PostgresAddr(b)
		return dbm.Config{Host: host, Port: port, User: "postgres", Database: "test", SSLMode: "disable",
			Params: map[string]string{"application_name": "dbmotel_bench"}}
	}},
}

func benchPointSelect(b *testing.B, cfg dbm.Config, opts ...dbm.Option) {
	p := newPointSelect(b, cfg, opts...)
	b.ReportAllocs()
	i := 0
	cpu, user := cpuTime(), userTime()
	for b.Loop() {
		p.get(b, i)
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

// BenchmarkOtelPointSelectPaired measures the overhead goal as a paired
// comparison, for a machine too loaded for BenchmarkOtelPointSelect's
// runs to tell a few percent apart: two managers over the same pool and
// connection, one without a tracer ("plain") and a partner (see
// pointSelect.partner), take turns in blocks of pairedBlock point
// selects within one loop. Each block's CPU
// time (the process's) and wall time are charged to the manager that ran
// it, and each plain block is paired with the partner block after it:
// both see the same load, millisecond by millisecond. The partners
// (sub-benchmark pair=...):
//
//   - otel: dbmotel on the no-op exporter (BenchmarkOtelPointSelect's
//     impl=otel): the overhead goal.
//   - span: a tracer that makes exactly one SDK span per statement, with
//     the same start options as dbmotel's, and nothing else (no metrics,
//     no acquire or release calls): the floor of any tracer that records
//     a span per statement on this SDK.
//   - unsampled: dbmotel whose sampler records no span (most statements
//     under a low sampling ratio): the metrics and an unrecorded span.
//   - metrics: dbmotel with OpenTelemetry's no-op TracerProvider and the
//     SDK's metrics: no span at all.
//   - aa: a second manager without a tracer: what the method reads when
//     there is no difference.
//
// It reports, for CPU time and wall time, extra-% (the partner's total
// over plain's, minus one) and extra-med-% (the median over the pairs of
// blocks of the same ratio; a block that lost its core, or ran into a
// garbage collection, moves it less), and each side's CPU time per point
// select. (The garbage collector's work for the partner's allocations is
// shared between the two: the CPU figures slightly understate it.)
//
//	go test -run '^$' -bench OtelPointSelectPaired -benchtime 3s -count 8 ./dbm/dbmotel
func BenchmarkOtelPointSelectPaired(b *testing.B) {
	for _, db := range pointSelectDBs {
		for _, pair := range []string{"otel", "span", "unsampled", "metrics", "aa"} {
			b.Run("db="+db.name+"/pair="+pair, func(b *testing.B) {
				cfg := db.config(b)
				var opts []dbm.Option
				switch pair {
				case "otel":
					opts = append(opts, dbm.WithTracer(noopExport(b, cfg, sdktrace.AlwaysSample())))
				case "span":
					opts = append(opts, dbm.WithTracer(newSpanOnly(b, cfg)))
				case "unsampled":
					opts = append(opts, dbm.WithTracer(noopExport(b, cfg, sdktrace.NeverSample())))
				case "metrics":
					opts = append(opts, dbm.WithTracer(newBenchTracer(b, cfg, tracenoop.NewTracerProvider(), true)))
				}
				plain := newPointSelect(b, cfg)
				benchPaired(b, plain, plain.partner(b, cfg, opts...))
			})
		}
	}
}

// benchPaired runs BenchmarkOtelPointSelectPaired's turns of plain and
// other and reports the figures its comment describes.
func benchPaired(b *testing.B, plain, other *pointSelect) {
	ps := [2]*pointSelect{plain, other}
	var cpu, wall [2][]float64 // per block
	i, from, t0 := 0, cpuTime(), time.Now()
	for b.Loop() {
		k := i / pairedBlock % 2
		ps[k].get(b, i)
		if i++; i%pairedBlock == 0 {
			now, t := cpuTime(), time.Now()
			cpu[k], wall[k] = append(cpu[k], float64(now-from)), append(wall[k], float64(t.Sub(t0)))
			from, t0 = now, t
		}
	}
	n := min(len(cpu[0]), len(cpu[1]))
	if from < 0 || n == 0 {
		return // too short for one pair, or no CPU clock
	}
	report := func(name string, v [2][]float64) {
		var sum [2]float64
		ratios := make([]float64, n)
		for j := range n {
			sum[0], sum[1] = sum[0]+v[0][j], sum[1]+v[1][j]
			ratios[j] = v[1][j] / v[0][j]
		}
		slices.Sort(ratios)
		b.ReportMetric(100*(sum[1]/sum[0]-1), name+"-extra-%")
		b.ReportMetric(100*(ratios[n/2]-1), name+"-extra-med-%")
		if name == "cpu" {
			b.ReportMetric(sum[0]/float64(n*pairedBlock), "plain-cpu-ns/op")
			b.ReportMetric(sum[1]/float64(n*pairedBlock), "other-cpu-ns/op")
		}
	}
	report("cpu", cpu)
	report("wall", wall)
}

// pairedBlock is the number of point selects each manager of
// BenchmarkOtelPointSelectPaired runs in turn: enough that reading the
// CPU time (a system call, microsecond resolution) is lost in a block.
const pairedBlock = 200

// spanOnly is BenchmarkOtelPointSelectPaired's pair=span tracer: one SDK
// span per statement, started with dbmotel's options and ended, and
// nothing else.
type spanOnly struct {
	tracer trace.Tracer
	name   string
	start  []trace.SpanStartOption
}

func newSpanOnly(b *testing.B, cfg dbm.Config) *spanOnly {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(dropSpans{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	attrs := []attribute.KeyValue{semconv.DBSystemNameSQLite, semconv.DBOperationName("SELECT")}
	if cfg.Host != "" { // PostgreSQL: what dbmotel's spans carry for it
		attrs = append(attrs[:0], semconv.DBSystemNamePostgreSQL, semconv.DBOperationName("SELECT"),
			semconv.ServerAddress(cfg.Host), semconv.ServerPort(cfg.Port), semconv.DBNamespace(cfg.Database))
	}
	return &spanOnly{tracer: tp.Tracer("spanonly"), name: "SELECT " + cfg.Database,
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)}}
}

func (s *spanOnly) Start(ctx context.Context, _ dbm.TraceOp) context.Context {
	ctx, _ = s.tracer.Start(ctx, s.name, s.start...)
	return ctx
}

func (s *spanOnly) End(ctx context.Context, _ dbm.TraceOp, _ dbm.TraceResult) {
	trace.SpanFromContext(ctx).End()
}

// pointSelect is a manager with a table of 100 rows to look up by key.
type pointSelect struct {
	m *dbm.Manager
	q string
}

// newPointSelect opens a manager for cfg with opts and fills its table;
// both go when b ends.
func newPointSelect(b *testing.B, cfg dbm.Config, opts ...dbm.Option) *pointSelect {
	ctx := context.Background()
	m, err := dbm.New(ctx, cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	tbl := fmt.Sprintf("dbmotel_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := m.Exec(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, name VARCHAR(20))"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = m.Exec(context.Background(), "DROP TABLE "+tbl) })
	for i := range 100 {
		if _, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id, name) VALUES (?, ?)", i, fmt.Sprint("name", i)); err != nil {
			b.Fatal(err)
		}
	}
	return &pointSelect{m: m, q: "SELECT name FROM " + tbl + " WHERE id = ?"}
}

// partner returns a second manager over p's pool (with dbm.Wrap), with
// opts, looking up the same rows. Both then use the same connection: on
// a loaded machine two connections can differ by a third for as long as
// they live (their server processes on different cores), which pairing
// within one run does not cancel. Closing p closes the pool; the partner
// starts nothing that needs closing of its own (goleak checks).
func (p *pointSelect) partner(b *testing.B, cfg dbm.Config, opts ...dbm.Option) *pointSelect {
	driver := string(cfg.Driver)
	if driver == "" {
		driver = string(dbm.DriverPostgres)
	}
	m, err := dbm.Wrap(p.m.DB().DB, driver, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return &pointSelect{m: m, q: p.q}
}

// get looks up row i%100.
func (p *pointSelect) get(b *testing.B, i int) {
	var name string
	if err := p.m.Get(context.Background(), &name, p.q, i%100); err != nil {
		b.Fatal(err)
	}
}
