package dbmotel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmotel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sink is where a test's spans and metrics land: the SDK's in-memory
// span recorder and a manual metric reader.
type sink struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tracer *dbmotel.Tracer
	tp     *sdktrace.TracerProvider // the Tracer's, for a caller's span
}

// newSink makes a Tracer that reports to an in-memory sink.
func newSink(t *testing.T, opts ...dbmotel.Option) *sink {
	t.Helper()
	s := &sink{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	ot, err := dbmotel.New(append([]dbmotel.Option{dbmotel.WithTracerProvider(tp), dbmotel.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	s.tracer, s.tp = ot, tp
	return s
}

// open makes a manager for cfg traced by s, with its pool observed.
func (s *sink) open(t *testing.T, cfg dbm.Config) *dbm.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := dbm.New(ctx, cfg, dbm.WithTracer(s.tracer))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := s.tracer.ObservePool(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = reg.Unregister()
		_ = m.Close()
	})
	return m
}

// ended returns the spans that ended so far called name, or name and a
// target ("SELECT test").
func (s *sink) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		if n := sp.Name(); n == name || strings.HasPrefix(n, name+" ") {
			out = append(out, sp)
		}
	}
	return out
}

// metric collects and returns the metric called name; it fails the test
// when there is none.
func (s *sink) metric(t *testing.T, name string) metricdata.Metrics {
	t.Helper()
	m, ok := s.find(t, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return m
}

// find collects and returns the metric called name, if there is one.
func (s *sink) find(t *testing.T, name string) (metricdata.Metrics, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// attrs returns a span's attributes as strings.
func attrs(kv []attribute.KeyValue) map[string]string {
	out := map[string]string{}
	for _, a := range kv {
		out[string(a.Key)] = a.Value.String()
	}
	return out
}

// wantAttrs reports the attributes of got that differ from want; a want
// value "" means the attribute must be absent.
func wantAttrs(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == "" && ok:
			t.Errorf("%s: attribute %s = %q, want it absent", what, k, g)
		case v != "" && g != v:
			t.Errorf("%s: attribute %s = %q, want %q (all: %v)", what, k, g, v, got)
		}
	}
}
