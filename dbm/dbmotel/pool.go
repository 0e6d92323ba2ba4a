package dbmotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// ObservePool registers the pool's gauges for m, read at each collection:
// from [dbm.Manager.Stats] db.client.connection.count with
// db.client.connection.state idle and used (database/sql's Idle and
// InUse) and db.client.connection.max (MaxOpenConnections; 0 means no
// limit), and db.client.connection.pending_requests, the callers waiting
// for a connection now (between [Tracer.TraceAcquireStart] and
// [Tracer.TraceAcquire]: an atomic counter, not a measurement per call).
// Call it once m exists, with the manager that has t as its tracer;
// Unregister the result before closing m. A nil m is a
// [*dbm.ArgumentError].
func (t *Tracer) ObservePool(m *dbm.Manager) (metric.Registration, error) {
	if m == nil {
		return nil, &dbm.ArgumentError{Func: "dbmotel.ObservePool", Arg: "m", Reason: "nil *dbm.Manager"}
	}
	count, err1 := dbconv.NewClientConnectionCountObservable(t.meter)
	maxConns, err2 := dbconv.NewClientConnectionMaxObservable(t.meter)
	pending, err3 := dbconv.NewClientConnectionPendingRequestsObservable(t.meter)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	pool := semconv.DBClientConnectionPoolName(t.poolName)
	idle := metric.WithAttributeSet(attribute.NewSet(pool, semconv.DBClientConnectionStateIdle))
	used := metric.WithAttributeSet(attribute.NewSet(pool, semconv.DBClientConnectionStateUsed))
	only := metric.WithAttributeSet(attribute.NewSet(pool))
	return t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := m.Stats()
		o.ObserveInt64(count.Inst(), int64(s.Idle), idle)
		o.ObserveInt64(count.Inst(), int64(s.InUse), used)
		o.ObserveInt64(maxConns.Inst(), int64(s.MaxOpenConnections), only)
		o.ObserveInt64(pending.Inst(), t.pendingNow.Load(), only)
		return nil
	}, count.Inst(), maxConns.Inst(), pending.Inst())
}
