package dbm

import (
	"context"
	"time"
)

// Tracer observes the statements and transactions a [Manager] runs, for
// example to open and close OpenTelemetry spans or to record latency
// histograms. It is set with [WithTracer]; package dbm itself depends on no
// tracing library.
//
// The manager calls Start before an operation and End exactly once after it,
// with the context Start returned, so a tracer can keep its span in that
// context. Both are called on the goroutine that runs the operation and
// must be safe for concurrent use. They must not call back into the
// manager.
//
// A tracer may also implement [AcquireTracer] and [AcquireStartTracer]
// (waits for a pool connection), [ReleaseTracer] (how long the connection
// was held) and [ConnectTracer] (new connections).
// Package dbm/dbmotel is a Tracer for OpenTelemetry.
type Tracer interface {
	// Start is called before the operation. The context it returns is used
	// for the operation (it reaches the driver) and is passed to End; a
	// tracer that keeps nothing returns ctx.
	Start(ctx context.Context, op TraceOp) context.Context
	// End is called once when the operation is over, with the same op.
	End(ctx context.Context, op TraceOp, res TraceResult)
}

// AcquireTracer is an optional interface for a [Tracer]: when the tracer
// given to [WithTracer] also implements it, the manager reports each time
// a call got its turn at a connection and how long it waited for it: every
// statement outside a transaction, [Manager.BeginTx], [Manager.Conn] and
// [Manager.Ping] wait in the manager's fair queue (see
// docs/reliability.md#fair-queue); a write not marked [Idempotent], which
// runs on a connection of its own, also counts the taking of that
// connection. A pool from [Wrap] without a MaxOpenConnections bound and
// with [NoAcquireTimeout] has no queue: there only writes (and
// [Manager.Conn]) are reported; database/sql does not tell how long the
// others waited.
type AcquireTracer interface {
	// TraceAcquire is called after each acquisition. op.Name is the
	// operation the connection was for ("exec", "query", "begin", "ping"),
	// op.Statement its statement when there is one; res.Duration is the
	// wait, and res.Err is set (e.g. matching [ErrPoolTimeout]) when no
	// connection was had.
	TraceAcquire(ctx context.Context, op TraceOp, res TraceResult)
}

// The operations a [Tracer] sees, in [TraceOp.Name].
const (
	// TraceQuery is a statement that returns rows: [Manager.ExecuteQuery],
	// [Manager.Get], [Manager.Query] and the generic helpers.
	TraceQuery = "query"
	// TraceExec is a statement run with [Manager.Exec].
	TraceExec = "exec"
	// TraceTx is a transaction, from [Manager.BeginTx] (or [Manager.WithTx])
	// to its [Tx.Commit] or [Tx.Rollback].
	TraceTx = "tx"
)

// TraceOp describes the operation a [Tracer] is told about. It never holds
// argument values or the password.
type TraceOp struct {
	// Name is [TraceQuery], [TraceExec] or [TraceTx].
	Name string
	// Statement is the SQL as sent to the driver (placeholders rebound),
	// shortened to 200 characters, with a statement that contains the
	// password withheld. It is empty for [TraceTx].
	Statement string
	// Attempt counts the tries of this operation, starting at 1.
	Attempt int
	// InTx reports whether the statement runs inside a transaction. Within
	// [Manager.WithTx] the statements get the context of the transaction's
	// Start, so their spans nest under the transaction's.
	InTx bool
}

// TraceResult is how an operation ended, as passed to [Tracer.End].
type TraceResult struct {
	// Duration is the time from Start to End. For [Manager.Query] it ends
	// when the first rows are available, not when the caller closes them.
	Duration time.Duration
	// Rows is the number of rows read for [Manager.ExecuteQuery] and
	// [Manager.Get] (and [Select], [One]); -1 when not known.
	Rows int
	// Err is the error returned to the caller, nil on success.
	Err error
	// Class is [Classify](Err): the error's class, a suitable metric or span
	// attribute. Only meaningful when Err is not nil.
	Class Class
	// Committed reports, for [TraceTx], whether the transaction committed.
	Committed bool
	// Waited reports, for [AcquireTracer.TraceAcquire], whether the caller
	// had to wait for its turn at a connection: none was free at once in
	// the manager's fair queue (or, for a pool without a queue, the wait
	// was database/sql's, which does not tell: always true there). When it
	// is false, Duration is 0 for a call that takes its turn only (as in
	// [Stats].AcquireWait), and for a call that then takes a connection of
	// its own (a write, [Manager.Conn], BEGIN on pgx with dbm/dbmpgx), the
	// time that took (opening one when none was idle).
	Waited bool
}

// WithTracer sets a [Tracer] for every statement and transaction of the
// manager. Without one (the default, or a nil t), tracing costs one nil
// check per operation.
func WithTracer(t Tracer) Option {
	return optionFunc(func(o *options) { o.tracer = t })
}
