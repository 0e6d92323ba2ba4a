package dbm

import "context"

// ConnectTracer is an optional interface for a [Tracer]: when the tracer
// given to [WithTracer] implements it, the pool that [New] opens reports
// every new connection it makes, and how long the driver took to make it
// (OpenTelemetry's db.client.connection.create_time). The pool that [Wrap]
// is given is the caller's and reports nothing.
type ConnectTracer interface {
	// TraceConnect is called after each attempt to open a connection, on
	// the goroutine that needed it, with the context database/sql passed
	// the driver. res.Duration is the time the driver took; res.Err is the
	// driver's error (with a text that contained the password withheld)
	// and res.Class its class, when the connection failed.
	TraceConnect(ctx context.Context, res TraceResult)
}
