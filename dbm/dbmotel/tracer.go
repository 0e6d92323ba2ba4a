package dbmotel

import (
	"context"
	"errors"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// instrumentation is the instrumentation scope's name.
const instrumentation = "github.com/dbmanager-go/dbmanager/dbm/dbmotel"

// The names of what the package adds to the conventions.
const (
	// AcquireSpan is the name of the span of a wait for a pool connection.
	AcquireSpan = "dbm.acquire"
	// TxSpan is the name of a transaction's span, from BEGIN to COMMIT or
	// ROLLBACK; the statements in it are its children.
	TxSpan = "dbm.transaction"
	// RetryEvent is the event on the span of a statement's second and
	// later attempts.
	RetryEvent = "dbm.retry"
	// RerunEvent is the event on the transaction span of a
	// [dbm.Manager.WithTx] function's second and later runs.
	RerunEvent = "dbm.tx.rerun"
	// AttemptKey is the attempt's number (2, 3, ...) on those events.
	AttemptKey = attribute.Key("dbm.attempt")
	// CommittedKey tells on a transaction span whether it committed.
	CommittedKey = attribute.Key("dbm.tx.committed")
)

// Tracer is a [dbm.Tracer] (with [dbm.AcquireTracer],
// [dbm.AcquireStartTracer], [dbm.ReleaseTracer] and [dbm.ConnectTracer]) that makes
// OpenTelemetry spans and metrics.
// Make it with [New]; it is safe for concurrent use. One Tracer belongs to
// one manager: its pool metrics carry one pool name.
type Tracer struct {
	tracer    trace.Tracer
	meter     metric.Meter
	system    dbconv.SystemNameAttr
	poolName  string
	target    string // the span name's {target}: db.namespace, else server.address:server.port
	queryText bool
	// noSpans: the TracerProvider is OpenTelemetry's no-op one
	// (trace/noop): no span is started, only metrics are recorded.
	noSpans bool
	// spanAttrs are set on every statement span: db.system.name,
	// server.address, server.port.
	spanAttrs []attribute.KeyValue
	txStart   []trace.SpanStartOption // a transaction span's: kind client, spanAttrs
	// ops caches what each operation name's spans and measurements carry
	// (at most maxCached names; others are made per call): a map that is
	// only read, replaced by a copy with one more name under cacheMu, so a
	// lookup takes no lock.
	ops     atomic.Pointer[map[string]*opInfo]
	cacheMu sync.Mutex

	opDuration dbconv.ClientOperationDuration
	waitTime   dbconv.ClientConnectionWaitTime
	timeouts   dbconv.ClientConnectionTimeouts
	// pendingNow is db.client.connection.pending_requests: callers
	// between TraceAcquireStart and TraceAcquire, read by ObservePool's
	// callback at each collection.
	pendingNow atomic.Int64
	createTime dbconv.ClientConnectionCreateTime
	useTime    dbconv.ClientConnectionUseTime
	// The pool's measurement options (db.client.connection.pool.name), as
	// the slices the instruments take: made once, not per call.
	poolRecord []metric.RecordOption
	poolAdd    []metric.AddOption
	// acquires caches the acquire span's start options per operation
	// name (exec, query, begin, ping, conn).
	acquires sync.Map // string -> []trace.SpanStartOption
}

var (
	_ dbm.Tracer             = (*Tracer)(nil)
	_ dbm.AcquireTracer      = (*Tracer)(nil)
	_ dbm.AcquireStartTracer = (*Tracer)(nil)
	_ dbm.ConnectTracer      = (*Tracer)(nil)
	_ dbm.ReleaseTracer      = (*Tracer)(nil)
)

// New returns a Tracer. It fails with a [*dbm.ArgumentError] for a bad
// option, or with the meter's error when an instrument cannot be made.
func New(opts ...Option) (*Tracer, error) {
	o := options{system: "other_sql"}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	t := &Tracer{
		tracer:    o.tp.Tracer(instrumentation),
		meter:     o.mp.Meter(instrumentation),
		system:    dbconv.SystemNameAttr(o.system),
		poolName:  o.pool(),
		queryText: o.queryText,
		noSpans:   isNoop(o.tp),
		spanAttrs: []attribute.KeyValue{semconv.DBSystemNameKey.String(o.system)},
	}
	if o.host != "" {
		t.spanAttrs = append(t.spanAttrs, semconv.ServerAddress(o.host))
		if o.port != 0 {
			t.spanAttrs = append(t.spanAttrs, semconv.ServerPort(o.port))
		}
	}
	if o.namespace != "" {
		t.spanAttrs = append(t.spanAttrs, semconv.DBNamespace(o.namespace))
	}
	t.txStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(t.spanAttrs...)}
	switch {
	case o.namespace != "":
		t.target = o.namespace
	case o.host != "" && o.port != 0:
		t.target = net.JoinHostPort(o.host, strconv.Itoa(o.port))
	default:
		t.target = o.host
	}
	poolAttrs := metric.WithAttributeSet(attribute.NewSet(semconv.DBClientConnectionPoolName(t.poolName)))
	t.poolRecord, t.poolAdd = []metric.RecordOption{poolAttrs}, []metric.AddOption{poolAttrs}
	var errs [5]error
	t.opDuration, errs[0] = dbconv.NewClientOperationDuration(t.meter)
	t.waitTime, errs[1] = dbconv.NewClientConnectionWaitTime(t.meter)
	t.timeouts, errs[2] = dbconv.NewClientConnectionTimeouts(t.meter)
	t.createTime, errs[3] = dbconv.NewClientConnectionCreateTime(t.meter)
	t.useTime, errs[4] = dbconv.NewClientConnectionUseTime(t.meter)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return t, nil
}

// isNoop reports OpenTelemetry's no-op TracerProvider, whose spans record
// nothing: making them would only cost time.
func isNoop(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return false
}

// PoolName returns the db.client.connection.pool.name of the metrics.
func (t *Tracer) PoolName() string { return t.poolName }

// Start opens the span of a statement attempt or a transaction.
func (t *Tracer) Start(ctx context.Context, op dbm.TraceOp) context.Context {
	if t.noSpans {
		return ctx
	}
	if op.Name == dbm.TraceTx {
		ctx, span := t.tracer.Start(ctx, TxSpan, t.txStart...)
		if op.Attempt > 1 && span.IsRecording() {
			span.AddEvent(RerunEvent, trace.WithAttributes(AttemptKey.Int(op.Attempt)))
		}
		return ctx
	}
	info := t.op(operationName(op.Statement))
	opts := info.start
	if t.queryText && op.Statement != "" {
		opts = append(opts[:len(opts):len(opts)], trace.WithAttributes(semconv.DBQueryText(op.Statement)))
	}
	ctx, span := t.tracer.Start(ctx, info.spanName, opts...)
	if op.Attempt > 1 && span.IsRecording() {
		span.AddEvent(RetryEvent, trace.WithAttributes(AttemptKey.Int(op.Attempt)))
	}
	return ctx
}

// End closes the span Start opened and records the statement's duration.
func (t *Tracer) End(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	if op.Name == dbm.TraceTx {
		if t.noSpans {
			return
		}
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.SetAttributes(CommittedKey.Bool(res.Committed))
		}
		endSpan(span, res)
		return
	}
	if !t.noSpans {
		endSpan(trace.SpanFromContext(ctx), res)
	}
	info := t.op(operationName(op.Statement))
	if res.Err == nil {
		t.opDuration.Inst().Record(ctx, res.Duration.Seconds(), info.ok...)
		return
	}
	attrs := append(info.attrs[:len(info.attrs):len(info.attrs)], semconv.ErrorTypeKey.String(res.Class.String()))
	if code := sqlState(res.Err); code != "" {
		attrs = append(attrs, semconv.DBResponseStatusCode(code))
	}
	t.opDuration.Inst().Record(ctx, res.Duration.Seconds(), metric.WithAttributes(attrs...))
}

// opInfo is what the spans and measurements of one operation name carry.
type opInfo struct {
	spanName string
	attrs    []attribute.KeyValue    // the span's: spanAttrs and db.operation.name
	start    []trace.SpanStartOption // kind client, attrs
	ok       []metric.RecordOption   // a successful statement's duration attributes
}

// maxCached bounds the operation names whose opInfo is kept: statements
// come from the program's code, so a few dozen names cover them all.
const maxCached = 64

// op returns the opInfo of an operation name ("" for a statement without
// one), made once per name.
func (t *Tracer) op(name string) *opInfo {
	if ops := t.ops.Load(); ops != nil {
		if o, ok := (*ops)[name]; ok {
			return o
		}
	}
	info := &opInfo{spanName: name, attrs: t.spanAttrs}
	switch {
	case name == "" && t.target == "":
		info.spanName = string(t.system)
	case name == "":
		info.spanName = t.target
	case t.target != "":
		info.spanName = name + " " + t.target
	}
	if name != "" {
		info.attrs = append(t.spanAttrs[:len(t.spanAttrs):len(t.spanAttrs)], semconv.DBOperationName(name))
	}
	info.start = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(info.attrs...)}
	info.ok = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(info.attrs...))}
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	old := t.ops.Load()
	if old == nil {
		old = new(map[string]*opInfo)
	}
	if o, ok := (*old)[name]; ok {
		return o // made meanwhile by another caller
	}
	if len(*old) < maxCached {
		ops := make(map[string]*opInfo, len(*old)+1)
		maps.Copy(ops, *old)
		ops[name] = info
		t.ops.Store(&ops)
	}
	return info
}

// endSpan sets the error attributes and status of a failed operation and
// ends span.
func endSpan(span trace.Span, res dbm.TraceResult) {
	if res.Err != nil && span.IsRecording() {
		class := res.Class.String()
		attrs := []attribute.KeyValue{semconv.ErrorTypeKey.String(class)}
		if code := sqlState(res.Err); code != "" {
			attrs = append(attrs, semconv.DBResponseStatusCode(code))
		}
		span.SetAttributes(attrs...)
		// The class, not the error's text: the text may quote values
		// from the server's message.
		span.SetStatus(codes.Error, class)
	}
	span.End()
}

// sqlState is the server's error code (SQLSTATE, or MySQL's number) of a
// manager error, "" when there is none.
func sqlState(err error) string {
	var e *dbm.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TraceAcquireStart counts a caller that begins to wait for a connection
// (in db.client.connection.pending_requests, which [Tracer.ObservePool]
// reports).
func (t *Tracer) TraceAcquireStart(context.Context, dbm.TraceOp) {
	t.pendingNow.Add(1)
}

// TraceAcquire records a wait for a pool connection: its duration, when
// no connection was had in time a timeout and, when the caller did wait
// ([dbm.TraceResult.Waited]) or the wait failed, its span (made after the
// fact, from when the wait began). A call that found a connection free at
// once gets no span: a span of a few hundred nanoseconds that waited for
// nothing would tell nothing, and would cost as much as the statement's
// own span.
func (t *Tracer) TraceAcquire(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	t.pendingNow.Add(-1)
	t.waitTime.Inst().Record(ctx, res.Duration.Seconds(), t.poolRecord...)
	if res.Err != nil && errors.Is(res.Err, dbm.ErrPoolTimeout) {
		t.timeouts.Inst().Add(ctx, 1, t.poolAdd...)
	}
	if t.noSpans || !res.Waited && res.Err == nil {
		return
	}
	// One clock reading: the span begins res.Duration before now and
	// ends now, as the SDK reads its clock in End.
	opts := t.acquireStart(op.Name)
	_, span := t.tracer.Start(ctx, AcquireSpan, append(opts[:len(opts):len(opts)], trace.WithTimestamp(time.Now().Add(-res.Duration)))...)
	endSpan(span, res)
}

// acquireStart returns the start options of the acquire span of an
// operation: kind internal, the pool name and dbm.operation.
func (t *Tracer) acquireStart(op string) []trace.SpanStartOption {
	if o, ok := t.acquires.Load(op); ok {
		return o.([]trace.SpanStartOption)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(semconv.DBClientConnectionPoolName(t.poolName), attribute.String("dbm.operation", op))}
	switch op {
	case "exec", "query", "begin", "ping", "conn": // the manager's names: a handful
		t.acquires.Store(op, opts)
	}
	return opts
}

// TraceRelease records how long a connection the manager took was held,
// from the end of the wait to its release (db.client.connection.use_time).
func (t *Tracer) TraceRelease(ctx context.Context, _ dbm.TraceOp, res dbm.TraceResult) {
	t.useTime.Inst().Record(ctx, res.Duration.Seconds(), t.poolRecord...)
}

// TraceConnect records the time the driver took to open a new connection
// (db.client.connection.create_time), with error.type when it failed.
func (t *Tracer) TraceConnect(ctx context.Context, res dbm.TraceResult) {
	if res.Err == nil {
		t.createTime.Inst().Record(ctx, res.Duration.Seconds(), t.poolRecord...)
		return
	}
	t.createTime.Inst().Record(ctx, res.Duration.Seconds(), metric.WithAttributes(
		semconv.DBClientConnectionPoolName(t.poolName), semconv.ErrorTypeKey.String(res.Class.String())))
}
