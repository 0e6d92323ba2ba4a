package dbm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// The retry rules, stated once (docs/errors-and-retries.md explains them):
//
//   - A statement outside a transaction that only reads is retried on
//     [ClassConnection], [ClassTooManyConnections], [ClassSerialization],
//     [ClassDeadlock] and [ClassLockTimeout].
//   - A write outside a transaction is retried only when the error proves it
//     did not take effect: no connection could be had for it (nothing was
//     sent), or the server answered that it refused or rolled it back
//     ([ClassTooManyConnections], [ClassSerialization], [ClassDeadlock],
//     [ClassLockTimeout], SQLSTATE 57P03/08001/08004). It runs on a
//     connection of its own ([sql.Conn]), where database/sql does not retry
//     it behind the manager's back. A lost reply is not retried: the error
//     matches [ErrConnection] and [ErrOutcomeUnknown].
//   - [Idempotent] marks writes as safe to run twice: they retry like reads.
//     [NotIdempotent] marks any statement, a read included, as a write.
//   - Inside a [Tx] no statement is retried; [Manager.WithTx] reruns the
//     whole function instead (see [Manager.WithTx]).
//   - On a [Conn] no statement is retried nor moved to another connection:
//     its session state lives on that one.
//   - A read (or idempotent write), BEGIN or ping whose pooled connection
//     turns out broken runs again on another one, without using up an
//     attempt (see replaceBadConns and replacer); a write never does.

// retryPolicy is the manager's retry and pool-wait settings.
type retryPolicy struct {
	attempts int           // tries in all, the first included; <= 1: no retries
	initial  time.Duration // the first pause's cap
	max      time.Duration // the cap of any pause
	acquire  time.Duration // Config.AcquireTimeout; 0: wait as long as ctx allows
	// replaceFor is Config.ConnectTimeout: how long work whose connections
	// keep breaking goes on running on new ones (see replacer).
	replaceFor time.Duration
	clock      clock
	// draw returns a uniformly random duration in [0, n); nil: rand.N.
	// Tests replace it (see export_test.go).
	draw func(n time.Duration) time.Duration
}

// clock is what retries need from time. Tests replace it (see
// export_test.go) so that no test sleeps or depends on the wall clock.
type clock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

var realClock = clock{now: time.Now, sleep: sleepCtx}

// sleepCtx pauses for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newRetryPolicy takes the retry settings from a Config with its defaults
// applied.
func newRetryPolicy(cfg Config) retryPolicy {
	return retryPolicy{
		attempts:   cfg.RetryMaxAttempts,
		initial:    cfg.RetryInitialBackoff,
		max:        cfg.RetryMaxBackoff,
		acquire:    max(cfg.AcquireTimeout, 0), // NoAcquireTimeout: 0; see options.acquireTimeout
		replaceFor: cfg.ConnectTimeout,
		clock:      realClock,
	}
}

// backoff returns the pause after the n-th failed attempt (n >= 1):
// "full jitter", a uniformly random duration in [0, cap], where cap starts at
// initial and doubles with every attempt up to max. Random pauses keep
// callers that failed together from retrying together.
func (p *retryPolicy) backoff(n int) time.Duration {
	c := p.initial
	for i := 1; i < n && c < p.max; i++ {
		c *= 2
	}
	c = min(c, p.max)
	if c <= 0 {
		return 0
	}
	if p.draw != nil {
		return p.draw(c + 1)
	}
	return rand.N(c + 1)
}

// retry runs attempt until it succeeds, until again says its error is not
// worth another try, until the attempts run out, or until the next pause
// would end past ctx's deadline (it then gives up at once rather than sleep
// in vain). It returns the last attempt's error. op and query are for the
// log records only.
//
// With replace set (work that is harmless to repeat), an attempt whose
// connection turns out broken runs again without using up an attempt (see
// replaceBadConns and replacer); each such rerun counts in Stats.Retries.
// The loop is written out here rather than calling replaceBadConns, so that
// the frames between the caller and the statement stay few: the leak
// detector records only the first leakPCs of them.
func (m *Manager) retry(ctx context.Context, op, query string, again func(error) bool, replace bool, attempt func() error) error {
	return m.retryAfter(ctx, op, query, again, replace, attempt, attempt())
}

// retryAfter is [Manager.retry] for a caller that made the first attempt
// itself, which ended with err: nil returns at once, an error goes on as in
// retry. The statements of autocommit make their first attempt that way,
// so that one that succeeds (nearly all) runs without retry's frame, the
// largest on the way.
func (m *Manager) retryAfter(ctx context.Context, op, query string, again func(error) bool, replace bool, attempt func() error, err error) error {
	if err == nil {
		return nil
	}
	p := &m.retryPol
	var r replacer
	for n := 1; ; n++ {
		if n > 1 {
			err = attempt()
		}
		if staleCachedPlan(err) {
			m.retried()
			err = attempt() // once: the driver prepares the statement anew
		}
		if replace && brokenConn(err) {
			for r.start(m); brokenConn(err) && r.again(ctx); {
				m.retried()
				err = attempt()
			}
		}
		if err == nil || p.attempts <= 1 || !again(err) || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, errDatabaseDown) {
			// Failed fast: a probe begun for this call has just found
			// the database down (see prober). Trying again would only
			// wait, which failing fast is there to spare the caller.
			return err
		}
		if n >= p.attempts {
			m.logGiveUp(ctx, op, query, n, "attempts exhausted", err)
			return err
		}
		d := p.backoff(n)
		if dl, ok := ctx.Deadline(); ok && !p.clock.now().Add(d).Before(dl) {
			m.logGiveUp(ctx, op, query, n, "context deadline before the next attempt", err)
			return err
		}
		m.retried()
		if m.log.Enabled(ctx, slog.LevelDebug) {
			m.log.DebugContext(ctx, "dbm: retrying", slog.String("op", op), slog.Int("attempt", n+1),
				slog.String("class", Classify(err).String()), slog.Duration("backoff", d),
				slog.String("statement", m.secrets.Statement(query)))
		}
		if p.clock.sleep(ctx, d) != nil {
			return err
		}
	}
}

func (m *Manager) logGiveUp(ctx context.Context, op, query string, attempts int, why string, err error) {
	m.log.WarnContext(ctx, "dbm: giving up", slog.String("op", op), slog.Int("attempts", attempts),
		slog.String("reason", why), slog.String("class", Classify(err).String()),
		slog.String("statement", m.secrets.Statement(query)))
}

// staleCachedPlan reports PostgreSQL's refusal to run a statement the
// driver prepared before DDL changed the type of a column it returns
// (0A000, "cached plan must not change result type"; pgx's statement cache
// meets it). The server refused while binding the statement, before running
// it, and the error ended the statement's implicit transaction; pgx forgets
// a statement that failed. So outside a transaction the statement, read or
// write, runs again at once, once (see [Manager.retry]); in a transaction,
// which the error aborted, [Manager.WithTx] runs fn again.
func staleCachedPlan(err error) bool {
	if err == nil {
		return false // before e, which errors.As makes escape: no allocation per statement
	}
	var e *Error
	return errors.As(err, &e) && e.Code == "0A000" && strings.Contains(e.Err.Error(), "cached plan must not change result type")
}

// readRetryable: the classes a read is retried on.
func readRetryable(err error) bool {
	switch Classify(err) {
	case ClassConnection, ClassTooManyConnections, ClassSerialization, ClassDeadlock, ClassLockTimeout:
		return true
	}
	return false
}

// notExecuted reports whether a write's error proves that the statement did
// not take effect although it was sent: the server answered with an error
// that, in autocommit, means it refused or rolled back the statement.
func notExecuted(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Class {
	case ClassTooManyConnections, ClassSerialization, ClassDeadlock, ClassLockTimeout:
		return e.Code != "" // the server's own answer, not a guess from Go errors
	}
	switch e.Code {
	case "57P03", "08001", "08004": // cannot connect now; rejected connection
		return true
	}
	return safeToRetry(e.Err)
}

// safeToRetry reports pgx's own judgement (SafeToRetry, as pgconn's errors
// have it) that the failed request was never sent to the server.
func safeToRetry(err error) bool {
	var sr interface{ SafeToRetry() bool }
	return errors.As(err, &sr) && sr.SafeToRetry()
}

type idempotentKey struct{}

// Idempotent returns a copy of ctx that marks the writes run with it as safe
// to run more than once (an upsert, an UPDATE that sets absolute values, an
// INSERT guarded by an idempotency key). Such writes are retried like reads,
// also when the connection is lost after the statement was sent. Without
// the mark, a write is retried only when the error proves that it did not
// take effect; see docs/errors-and-retries.md. The innermost of Idempotent
// and [NotIdempotent] applies. A nil ctx is returned as it is, and the call
// that gets it fails with [ErrInvalidArgument].
func Idempotent(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return context.WithValue(ctx, idempotentKey{}, true)
}

// NotIdempotent returns a copy of ctx that marks the statements run with it
// as writes, also those that look like reads: a SELECT of a function with
// side effects (SELECT send_invoice(42)). Such a statement runs on a
// connection of its own and is retried only when the error proves that it
// did not take effect; when its connection is lost after it was sent, the
// error matches [ErrOutcomeUnknown]. It is the opposite of [Idempotent]; the
// innermost of the two applies. Statements inside a [Tx] are never retried
// anyway. A nil ctx is returned as it is, and the call that gets it fails
// with [ErrInvalidArgument].
func NotIdempotent(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return context.WithValue(ctx, idempotentKey{}, false)
}

// idempotence reports the mark [Idempotent] or [NotIdempotent] put on ctx,
// and whether there is one.
func idempotence(ctx context.Context) (idempotent, marked bool) {
	idempotent, marked = ctx.Value(idempotentKey{}).(bool)
	return idempotent, marked
}

// outcomeUnknown wraps the error of a write whose connection was lost after
// the statement was sent: it may or may not have taken effect.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string {
	return "outcome unknown, the statement may have taken effect: " + e.err.Error()
}
func (e *outcomeUnknown) Unwrap() error        { return e.err }
func (e *outcomeUnknown) Is(target error) bool { return target == ErrOutcomeUnknown }

// withCtxEnded returns err, marked to match [ErrTimeout] or [ErrCanceled]
// as well when ctx has ended: for an [ErrCommitUnknown] whose caller also
// gave up meanwhile.
func withCtxEnded(ctx context.Context, err error) error {
	var sentinel error
	switch ctx.Err() {
	case context.DeadlineExceeded:
		sentinel = ErrTimeout
	case context.Canceled:
		sentinel = ErrCanceled
	default:
		return err
	}
	return &ctxEnded{err: err, ctxErr: ctx.Err(), sentinel: sentinel}
}

// ctxEnded is the cause of an error whose context ended as well.
type ctxEnded struct{ err, ctxErr, sentinel error }

func (e *ctxEnded) Error() string {
	if errors.Is(e.err, e.ctxErr) {
		return e.err.Error()
	}
	return e.err.Error() + " (and " + e.ctxErr.Error() + ")"
}
func (e *ctxEnded) Unwrap() error        { return e.err }
func (e *ctxEnded) Is(target error) bool { return target == e.sentinel }

// autocommit runs one statement with the retry rules of its kind. once runs
// a single attempt on the session it is given: s itself (the pool, or the
// transaction), or s on a connection of its own. keep tells that once's
// result (rows) still uses that connection after once returns: once hands
// it to the [Rows] (session.conn), which give it back when closed.
func (s session) autocommit(ctx context.Context, op string, st stmtRef, keep bool, once func(session) error) error {
	if s.tx != nil || s.pin != nil {
		// Never retry a statement inside a transaction, nor move one off
		// a pinned connection (its session state lives there).
		return once(s)
	}
	m := s.m
	idem, marked := idempotence(ctx)
	q := st.sent
	write := op == "exec" || marked && !idem || !st.read
	safe := !write || idem
	if safe {
		// The pool path: database/sql may retry driver.ErrBadConn itself,
		// which is harmless for a read or an idempotent write. A broken
		// connection it does not replace is replaced at once (see
		// replaceBadConns). The queue's permit, taken first, bounds the
		// wait for a connection (see connQueue); without a queue (a Wrap
		// pool without a bound and NoAcquireTimeout) there is no bound.
		s.sentWrite = write // every attempt is sent, on the pool's connection
		err := s.poolAttempt(ctx, op, q, keep, once)
		if err == nil {
			return nil // the closure below is built only for a retry
		}
		return m.retryAfter(ctx, op, q, readRetryable, true, func() error {
			return s.poolAttempt(ctx, op, q, keep, once)
		}, err)
	}
	sent := false
	err := m.retry(ctx, op, q, func(err error) bool {
		if safe {
			return readRetryable(err)
		}
		return !sent && (Classify(err) == ClassConnection || Classify(err) == ClassTooManyConnections) || notExecuted(err)
	}, safe, func() error {
		s.attempt++
		conn, use, err := m.acquire(ctx, op, q)
		if err != nil {
			sent = false
			return err
		}
		sent = true
		own := session{m: m, ex: conn, attempt: s.attempt, conn: conn, sentWrite: write, permit: m.queue != nil}
		if keep {
			own.use = use.kept()
		}
		err = once(own)
		if !keep || err != nil {
			use.giveBack(ctx, conn)
			m.queue.give()
		} // else the Rows own conn and the permit, and give them back (see ownconn.go)
		return err
	})
	return err
}

// poolAttempt is one attempt of autocommit's pool path: once runs on s,
// under a permit of the manager's queue when it has one.
func (s *session) poolAttempt(ctx context.Context, op, q string, keep bool, once func(session) error) error {
	s.attempt++
	m := s.m
	if m.queue == nil {
		return once(*s)
	}
	use, err := m.enter(ctx, op, q)
	if err != nil {
		return err
	}
	s.permit = true
	if keep {
		s.use = use.kept()
	}
	err = once(*s)
	if !keep || err != nil {
		use.end(ctx)
		m.queue.give()
	} // else the Rows own the permit (see ownedConn)
	return err
}

// errMarks are what else is known about a statement's error when the
// [*Error] is built (see [Manager.wrapMarked]): the error is built with
// them in the first place, never changed afterwards.
type errMarks uint8

const (
	// markMidResult: the statement failed while its rows were read (see
	// midResult).
	markMidResult errMarks = 1 << iota
	// markSentWrite: the statement is a write that was sent; a lost
	// connection leaves its outcome unknown (see outcomeUnknownFor).
	markSentWrite
)

// wrapErr returns the cause of an *Error of the given class and code,
// wrapped as marks say.
func (k errMarks) wrapErr(class Class, code string, err error) error {
	if k&markMidResult != 0 {
		err = &midResult{err}
	}
	if k&markSentWrite != 0 && outcomeUnknownFor(class, code, err) {
		err = &outcomeUnknown{err}
	}
	return err
}

// outcomeUnknownFor reports whether an error of a sent write (class,
// code, cause err) leaves its outcome unknown: a lost connection.
//
// A write the caller's deadline or cancellation cut short without an answer
// from the server (no code: the server did not say it cancelled the
// statement) is just as unknown. An error that pgx says came before
// anything was sent (SafeToRetry: its context had ended before the
// statement went out) is not: the write did not take effect.
func outcomeUnknownFor(class Class, code string, err error) bool {
	lost := class == ClassConnection && code != "57P03" && code != "08001" && code != "08004"
	cut := (class == ClassTimeout || class == ClassCanceled) && code == ""
	return (lost || cut) && !safeToRetry(err) // pgx knows it sent nothing: not unknown
}

// acquire takes a connection from the pool for one statement, waiting at
// most Config.AcquireTimeout (when set) on top of ctx. A wait that runs out
// is an error matching [ErrPoolTimeout] that shows the pool's counts. The
// connection goes back with connUse.giveBack, or with the [ownedConn]
// that keeps it (own), so that a [ReleaseTracer] is told. With the
// manager's queue (see connQueue), the connection comes with a permit of
// it, which the caller gives back (m.queue.give) after the connection, or
// hands to the [Rows] or [Tx] that own it.
func (m *Manager) acquire(ctx context.Context, op, q string) (*sql.Conn, connUse, error) {
	if m.obs.acquirer != nil {
		return m.traceAcquire(ctx, op, q)
	}
	conn, _, err := m.acquireConn(ctx, op, q)
	return conn, connUse{}, err
}

// acquireConn is acquire without tracing. AcquireTimeout bounds the wait
// for a full pool only, in the queue: taking the connection then does not
// wait, and a connection it dials is made on ctx and bounded by
// ConnectTimeout (see dialConnector), its failure a connection error that
// names the dial, not a pool timeout. A manager with an acquire timeout
// always has a queue (see wrapQueue); without one (a Wrap pool without a
// bound and NoAcquireTimeout) only ctx bounds the wait. waited is
// [TraceResult.Waited]: whether the caller waited for its turn in the
// queue; without a queue, whatever waiting there was happened in
// database/sql, which does not say: true.
func (m *Manager) acquireConn(ctx context.Context, op, q string) (conn *sql.Conn, waited bool, err error) {
	if m.queue != nil {
		if waited, err = m.permit(ctx, op, q); err != nil {
			return nil, waited, err
		}
		conn, err := m.db.Conn(ctx)
		if err != nil {
			m.queue.give()
			return nil, waited, m.wrap(ctx, op, q, err)
		}
		return conn, waited, nil
	}
	if conn, err = m.db.Conn(ctx); err != nil {
		return nil, true, m.wrap(ctx, op, q, err)
	}
	return conn, true, nil
}

// endsWithin reports whether ctx's deadline comes within d: a bound of d
// on a wait under ctx would then never be reached, and the context and
// timer that set it (five allocations) can be saved.
func endsWithin(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= d
}

// poolTimeoutErr is the [ErrPoolTimeout] error of a wait for a connection
// that ran out of Config.AcquireTimeout: it shows the pool's counts and the
// oldest Rows and Tx open at that moment, where they were opened, which are
// what holds the connections when the pool is exhausted by a leak.
func (m *Manager) poolTimeoutErr(op, q string, err error) error {
	return m.newError(ClassPoolTimeout, "", op, q, &poolTimeout{wait: m.retryPol.acquire, stats: m.poolStats(),
		connecting: m.dials.connecting(), open: m.Leaks(), err: err})
}

// poolTimeoutShown is how many open resources an [ErrPoolTimeout] message
// names; the rest are counted.
const poolTimeoutShown = 5

// poolTimeout is the cause of an [ErrPoolTimeout] error.
type poolTimeout struct {
	wait       time.Duration
	stats      sql.DBStats
	connecting string // the connections being made for waiters, if any (see dialConnector.connecting)
	open       []Leak // oldest first, from Manager.Leaks
	err        error
}

func (e *poolTimeout) Error() string {
	s := e.stats
	msg := fmt.Sprintf("no free connection within %s (in use %d%s, idle %d, max open %d, waited %d times in all)",
		e.wait, s.InUse, e.connecting, s.Idle, s.MaxOpenConnections, s.WaitCount)
	if len(e.open) > 0 {
		var b strings.Builder
		for i, l := range e.open[:min(len(e.open), poolTimeoutShown)] {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(l.String())
		}
		if more := len(e.open) - poolTimeoutShown; more > 0 {
			fmt.Fprintf(&b, "; and %d more", more)
		}
		msg += "; open rows and transactions (close them, or they hold the connections): " + b.String()
	}
	return msg + ": " + e.err.Error()
}
func (e *poolTimeout) Unwrap() error { return e.err }

// errNoRerun marks a WithTx error that must not rerun fn: fn committed the
// transaction itself before it failed.
var errNoRerun = errors.New("fn committed the transaction before it failed")

// noRerun wraps err so that txRerunnable refuses it; errors.Is and As still
// see err.
type noRerun struct{ err error }

func (e *noRerun) Error() string   { return e.err.Error() }
func (e *noRerun) Unwrap() []error { return []error{e.err, errNoRerun} }

// txRerunnable reports whether a WithTx attempt that failed with err may
// run again: the transaction did not commit (the server aborted it, or the
// connection was lost before COMMIT was sent). Only the manager's own
// errors ([*Error]) of those classes rerun: a foreign error (fn's HTTP call
// failing with a [net.Error]) says nothing about the transaction. An error
// matching [ErrOutcomeUnknown] never reruns, whatever its class: it is a
// lost COMMIT reply ([ClassCommitUnknown]) or a write fn made outside the
// transaction that may have taken effect, and a rerun would repeat it.
func txRerunnable(err error) bool {
	if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, errNoRerun) {
		return false // anywhere in err, joined errors included
	}
	if staleCachedPlan(err) {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		// fn's error joined with a failed rollback: judge fn's error.
		if errs := j.Unwrap(); len(errs) > 0 {
			err = errs[0]
		}
	}
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	switch e.Class {
	case ClassSerialization, ClassDeadlock, ClassLockTimeout, ClassConnection, ClassTooManyConnections:
		return true
	}
	return false
}
