package dbm

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// poolWarnInterval is the least time between two "pool saturated" warnings.
const poolWarnInterval = time.Minute

// observer holds what the manager needs to log, trace and time statements.
type observer struct {
	tracer    Tracer             // nil: no tracing
	acquirer  AcquireTracer      // tracer, when it also implements AcquireTracer
	waiting   AcquireStartTracer // tracer, when it implements AcquireTracer and AcquireStartTracer
	releaser  ReleaseTracer      // tracer, when it implements AcquireTracer and ReleaseTracer
	now       func() time.Time   // time.Now, replaced in tests
	watchPool bool               // a logger was set: warn about pool waits

	// The pool check runs at most once per poolWarnInterval: the goroutine
	// that moves nextPoolCheck forward does it.
	nextPoolCheck atomic.Int64 // unix nanoseconds
	lastWaits     atomic.Int64 // sql.DBStats.WaitCount at the last check
	lastWaitDur   atomic.Int64 // sql.DBStats.WaitDuration at the last check
}

func newObserver(o options) observer {
	acq, _ := o.tracer.(AcquireTracer)
	var waiting AcquireStartTracer
	var releaser ReleaseTracer
	if acq != nil {
		waiting, _ = o.tracer.(AcquireStartTracer)
		releaser, _ = o.tracer.(ReleaseTracer)
	}
	return observer{
		tracer:    o.tracer,
		acquirer:  acq,
		waiting:   waiting,
		releaser:  releaser,
		now:       o.now,
		watchPool: o.logger.Handler() != slog.DiscardHandler,
	}
}

// stmt is one statement under way: what finish needs to record it.
type stmt struct {
	op      string // TraceQuery or TraceExec
	query   string // as sent
	start   time.Time
	attempt int
	inTx    bool
	traced  string   // the statement as the tracer was shown it; set only when a tracer is
	marks   errMarks // what its error is built with (see errMarks)
}

// traceOp is the TraceOp the tracer is shown for st.
func (st *stmt) traceOp() TraceOp {
	return TraceOp{Name: st.op, Statement: st.traced, Attempt: st.attempt, InTx: st.inTx}
}

// observed reports whether statements are timed, traced or watched for
// pool waits; when none of these is on, start and finish do nothing else.
func (m *Manager) observed() bool {
	return m.slow > 0 || m.obs.tracer != nil || m.obs.watchPool
}

// traced reports whether a Tracer is set.
func (m *Manager) traced() bool { return m.obs.tracer != nil }

// newStmt describes an attempt (1, 2, ... for a statement that is tried
// again) to run a statement, for [session.start] and [Manager.finish].
func (s session) newStmt(op, query string) stmt {
	st := stmt{op: op, query: query, attempt: max(s.attempt, 1), inTx: s.tx != nil}
	if s.sentWrite {
		st.marks = markSentWrite
	}
	return st
}

// start marks the beginning of the attempt st: it takes the time when a
// threshold or tracer needs it and tells the tracer. The returned context is
// the one to run the statement with.
func (s session) start(ctx context.Context, st *stmt) context.Context {
	if s.m.slow > 0 || s.m.obs.tracer != nil {
		return s.m.startObserved(ctx, st)
	}
	return ctx
}

func (m *Manager) startObserved(ctx context.Context, st *stmt) context.Context {
	o := &m.obs
	st.start = o.now()
	if o.tracer != nil {
		st.traced = m.secrets.Statement(st.query)
		ctx = o.tracer.Start(ctx, st.traceOp())
	}
	return ctx
}

// observe logs a slow statement, tells the tracer how the statement ended
// and looks at the pool's waits. err is already classified.
func (m *Manager) observe(ctx context.Context, st *stmt, rows int, err error) {
	o := &m.obs
	var now time.Time
	if !st.start.IsZero() || o.watchPool {
		now = o.now()
	}
	if m.slow > 0 {
		if d := now.Sub(st.start); d >= m.slow {
			m.stats.slow.Add(1)
			attrs := []any{slog.String("op", st.op), slog.Duration("duration", d), slog.String("statement", m.secrets.Statement(st.query))}
			if rows >= 0 {
				attrs = append(attrs, slog.Int("rows", rows))
			}
			m.log.WarnContext(ctx, "dbm: slow statement", attrs...)
		}
	}
	if o.tracer != nil {
		o.tracer.End(ctx, st.traceOp(), TraceResult{Duration: now.Sub(st.start), Rows: rows, Err: err, Class: Classify(err)})
	}
	if o.watchPool {
		m.checkPool(ctx, now)
	}
}

// checkPool warns, at most once per poolWarnInterval, when statements had
// to wait for a free connection since the last check: the pool is too small
// for the load (Config.MaxOpenConns) or connections are held too long.
func (m *Manager) checkPool(ctx context.Context, now time.Time) {
	o := &m.obs
	next, t := o.nextPoolCheck.Load(), now.UnixNano()
	if t < next || !o.nextPoolCheck.CompareAndSwap(next, t+int64(poolWarnInterval)) {
		return
	}
	ps := m.poolStats()
	waits := ps.WaitCount - o.lastWaits.Swap(ps.WaitCount)
	waited := ps.WaitDuration - time.Duration(o.lastWaitDur.Swap(int64(ps.WaitDuration)))
	if waits > 0 {
		m.log.WarnContext(ctx, "dbm: pool saturated: statements waited for a connection",
			slog.Int64("waits", waits), slog.Duration("waited", waited),
			slog.Int("in_use", ps.InUse), slog.Int("max_open_conns", ps.MaxOpenConnections),
			slog.Duration("since", poolWarnInterval))
	}
}

// txTrace is a transaction's span: set when a tracer is.
type txTrace struct {
	start   time.Time
	attempt int
	ended   atomic.Bool
}

// txAttemptKey carries the number of a [Manager.WithTx] run to the
// transaction's trace (set only when a tracer is).
type txAttemptKey struct{}

// traceTxStart tells the tracer a transaction begins and returns the
// context for it.
func (m *Manager) traceTxStart(ctx context.Context) (context.Context, *txTrace) {
	if m.obs.tracer == nil {
		return ctx, nil
	}
	tt := &txTrace{start: m.obs.now(), attempt: 1}
	if n, ok := ctx.Value(txAttemptKey{}).(int); ok {
		tt.attempt = n
	}
	return m.obs.tracer.Start(ctx, TraceOp{Name: TraceTx, Attempt: tt.attempt}), tt
}

// traceTxEnd tells the tracer, once, how the transaction ended.
func (m *Manager) traceTxEnd(ctx context.Context, tt *txTrace, committed bool, err error) {
	if tt == nil || tt.ended.Swap(true) {
		return
	}
	m.obs.tracer.End(ctx, TraceOp{Name: TraceTx, Attempt: tt.attempt}, TraceResult{Duration: m.obs.now().Sub(tt.start), Rows: -1, Err: err, Class: Classify(err), Committed: committed})
}

// traceAcquire takes a connection with m.acquireConn and tells the
// [AcquireTracer] how long that took (and the [AcquireStartTracer] that
// the wait begins). The connUse it returns is for the [ReleaseTracer].
func (m *Manager) traceAcquire(ctx context.Context, op, q string) (*sql.Conn, connUse, error) {
	top := TraceOp{Name: op, Statement: m.secrets.Statement(q)}
	if m.obs.waiting != nil {
		m.obs.waiting.TraceAcquireStart(ctx, top)
	}
	start := m.obs.now()
	conn, waited, err := m.acquireConn(ctx, op, q)
	end := m.obs.now()
	m.obs.acquirer.TraceAcquire(ctx, top,
		TraceResult{Duration: end.Sub(start), Rows: -1, Err: err, Class: Classify(err), Waited: waited})
	if err != nil || m.obs.releaser == nil {
		return conn, connUse{}, err
	}
	return conn, connUse{t: m.obs.releaser, now: m.obs.now, op: top, since: end}, nil
}

// connUse is a connection's time out of the pool, from [Manager.acquire]
// to its release, for the [ReleaseTracer]; the zero value (no tracer)
// reports nothing.
type connUse struct {
	t     ReleaseTracer
	now   func() time.Time
	op    TraceOp
	since time.Time       // when the wait for it ended
	ctx   context.Context // set by own: the context the connection was owned with
}

// end tells the [ReleaseTracer] that the connection went back.
func (u *connUse) end(ctx context.Context) {
	if u.t != nil {
		u.t.TraceRelease(ctx, u.op, TraceResult{Duration: u.now().Sub(u.since), Rows: -1})
	}
}

// giveBack returns conn, taken with [Manager.acquire], to the pool and
// reports the release.
func (u *connUse) giveBack(ctx context.Context, conn *sql.Conn) {
	_ = conn.Close()
	u.end(ctx)
}

// kept is the connUse for an [ownedConn] that keeps the connection past
// the call that took it; nil when there is no tracer to tell.
func (u *connUse) kept() *connUse {
	if u.t == nil {
		return nil
	}
	k := *u
	return &k
}
