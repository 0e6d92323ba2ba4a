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
