// Package dbmotel reports a [dbm.Manager]'s statements, transactions and
// pool to OpenTelemetry, following the database semantic conventions
// (semconv v1.43.0, the newest that go.opentelemetry.io/otel v1.47.0
// ships).
//
// Make one [Tracer] per manager, give it to the manager with
// [dbm.WithTracer], and register the pool's gauges once the manager exists:
//
//	ot, err := dbmotel.New(dbmotel.WithConfig(cfg))
//	...
//	m, err := dbm.New(ctx, cfg, dbm.WithTracer(ot))
//	...
//	reg, err := ot.ObservePool(m)
//	...
//	defer reg.Unregister()
//
// Spans: one client span per statement attempt, named "{db.operation.name}
// {target}" ("SELECT app": the statement's first keyword and db.namespace,
// else server.address:server.port), with db.system.name,
// db.operation.name, server.address and server.port, error.type (the
// [dbm.Class]) and an error status when it failed; db.query.text only with
// [WithQueryText]. A retried statement's second and later attempts, and a
// rerun [dbm.Manager.WithTx]'s later transactions, carry a "dbm.retry" or
// "dbm.tx.rerun" event. A wait for a pool connection that the manager
// takes itself is a span of its own, "dbm.acquire", under the operation's
// parent (the transaction's span for BEGIN), when the caller did wait for
// it (no connection was free at once, [dbm.TraceResult.Waited]) or the
// wait failed.
//
// Metrics: db.client.operation.duration (per statement attempt),
// db.client.connection.count by state, db.client.connection.max (observed
// from [dbm.Manager.Stats]) and db.client.connection.pending_requests
// (the callers waiting now), read at each collection once
// [Tracer.ObservePool] is called, and db.client.connection.wait_time,
// db.client.connection.timeouts and db.client.connection.use_time (the time each connection was held, see
// [dbm.ReleaseTracer]) for the acquisitions the manager makes itself (see
// [dbm.AcquireTracer]: set Config.AcquireTimeout to have every statement
// outside a transaction counted), and db.client.connection.create_time
// for the connections the pool of [dbm.New] opens ([dbm.ConnectTracer]).
// With OpenTelemetry's no-op TracerProvider (trace/noop) no span is made,
// only metrics. docs/observability.md lists what each measures, what it
// costs and how it compares with XSAM/otelsql.
//
// This package is separate so that only programs that import it compile
// OpenTelemetry; package dbm does not depend on it.
package dbmotel
