package dbm

import "context"

// AcquireStartTracer is an optional interface for a [Tracer] that also
// implements [AcquireTracer]: the manager calls TraceAcquireStart when it
// begins to wait for a pool connection, and the matching
// [AcquireTracer.TraceAcquire] when the wait is over (with a connection or
// an error), on the same goroutine. Between the two the caller is waiting,
// so a tracer can count the requests pending now (OpenTelemetry's
// db.client.connection.pending_requests). It is told about the same
// acquisitions as [AcquireTracer], no others: what database/sql takes from
// the pool directly is not seen.
type AcquireStartTracer interface {
	// TraceAcquireStart is called before each acquisition, with the op
	// TraceAcquire will get.
	TraceAcquireStart(ctx context.Context, op TraceOp)
}

// ReleaseTracer is an optional interface for a [Tracer] that also
// implements [AcquireTracer]: the manager calls TraceRelease when it gives
// back a connection it reported to [AcquireTracer.TraceAcquire] (one that
// was had, without an error), so that a tracer can measure how long
// connections are held (OpenTelemetry's db.client.connection.use_time).
// The connection is given back when the statement that took it is over,
// when the [Rows] that kept it are closed (or read to their end), when the
// [Tx] ends, or when the [Conn] is closed; the leak detector's reclaiming
// counts too. Each acquisition gets at most one TraceRelease, on the
// goroutine that gave the connection back.
type ReleaseTracer interface {
	// TraceRelease is called after the connection went back to the pool
	// (or, for a [Conn], was closed). op is the op TraceAcquire got;
	// res.Duration is the time from the end of the wait to the release.
	// ctx is the context the connection was taken for.
	TraceRelease(ctx context.Context, op TraceOp, res TraceResult)
}
