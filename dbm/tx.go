package dbm

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
)

// Tx is a transaction begun with [Manager.BeginTx] or run by
// [Manager.WithTx]. It offers the same query methods as the manager; the
// generic helpers accept it as a [Querier]. The caller must end it with
// Commit or Rollback; `defer tx.Rollback()` is safe because Rollback after
// Commit does nothing.
type Tx struct {
	tx        *sql.Tx
	s         session
	ctx       context.Context
	done      atomic.Bool // Commit or Rollback was called
	committed atomic.Bool
	trace     *txTrace  // nil without a Tracer
	leak      *leakNode // see leaks.go
	// the connection it owns, with AcquireTimeout; see ownconn.go
	conn *ownedConn
	// what AfterCommit registered; see tx_hooks.go
	hooks afterCommit
	// for a lost COMMIT reply; see commitcheck.go
	wrote    atomic.Bool // a statement that may write ran
	xid      int64       // the transaction id taken before COMMIT; 0: none
	backend  int64       // the server's pid of the session, taken with xid
	xidTaken bool
}

// BeginTx starts a transaction. opts may be nil for the driver's default
// isolation level. The transaction is rolled back by database/sql if ctx is
// canceled before Commit. With Config.AcquireTimeout set, the wait for a
// connection is bounded by it: past it, an error matching [ErrPoolTimeout].
// On a [Conn], use [Conn.BeginTx].
func (m *Manager) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	if c := m.routed(); c != nil {
		return c.beginTx(ctx, opts)
	}
	if err := m.check(ctx, "BeginTx"); err != nil {
		return nil, err
	}
	if err := checkIsolation(m.driver, opts); err != nil {
		return nil, err
	}
	ctx, trace := m.traceTxStart(ctx)
	stx, conn, err := m.beginTx(ctx, opts)
	if err != nil {
		err = m.wrap(ctx, "begin", "", err)
		m.traceTxEnd(ctx, trace, false, err)
		return nil, err
	}
	tx := &Tx{tx: stx, ctx: ctx, trace: trace, conn: conn}
	tx.s = session{m: m, ex: stx, tx: tx}
	m.txBegun(tx)
	return tx, nil
}

// Commit commits the transaction. Calling it after Commit or Rollback
// returns an error matching [ErrClosed] (and [sql.ErrTxDone]); so does
// calling it after the manager was closed, which rolls the transaction back.
//
// When COMMIT fails without an answer from the server (no SQLSTATE or
// error number: the connection was lost, or the driver gave up because the
// caller's context ended while COMMIT was under way), the transaction may
// or may not have committed: the error matches [ErrCommitUnknown] (and
// [ErrOutcomeUnknown] and [ErrConnection]; also [ErrTimeout] or
// [ErrCanceled] when ctx had ended) and is not retryable, because running
// the transaction again could apply it twice. [errors.As] still finds the
// driver's error. On PostgreSQL the manager first asks the server what
// became of a transaction that wrote (see [WithCommitCheck] and
// docs/errors-and-retries.md#lost-commit-replies): Commit then returns nil
// when it committed, an error of [ClassConnection] that does not match
// ErrOutcomeUnknown when it was rolled back, and ErrCommitUnknown only
// when the server could not say. A server's answer keeps its class (a
// serialization failure at COMMIT matches [ErrSerialization]: nothing was
// committed).
// Commit called after the transaction's context had ended sends nothing
// (database/sql rolls back): the error matches [ErrTimeout] or [ErrCanceled]
// only.
//
// After a successful COMMIT, and only then, Commit runs the functions
// registered with [Tx.AfterCommit], once each, before it returns.
func (tx *Tx) Commit() error {
	if err := tx.usable("Commit"); err != nil {
		return err
	}
	if tx.done.Swap(true) {
		return tx.s.m.newError(ClassClosed, "", "commit", "", sql.ErrTxDone)
	}
	hooks := tx.hooks.end()
	if err := tx.commit(); err != nil {
		return err
	}
	// The transaction is fully ended (connection given back, no longer
	// tracked, traced) before any hook runs: a hook that panics leaves
	// nothing half done.
	runHooks(hooks)
	return nil
}

// commit is Commit's work once the transaction is known to be open.
func (tx *Tx) commit() (err error) {
	m := tx.s.m
	defer func() { m.traceTxEnd(tx.ctx, tx.trace, err == nil, err) }()
	defer m.txEnded(tx)
	defer tx.conn.release()
	if m.isClosed() {
		_ = tx.tx.Rollback()
		m.countTxEnd(false)
		return m.newError(ClassClosed, "", "commit", "", errManagerClosed)
	}
	endedBefore := tx.ctx.Err() != nil // database/sql then does not send COMMIT
	if !endedBefore {
		if err := tx.takeXID(); err != nil {
			// COMMIT is not sent: the transaction is lost or aborted.
			_ = tx.tx.Rollback()
			m.countTxEnd(false)
			return m.wrap(tx.ctx, "commit", "", err)
		}
	}
	if err := tx.tx.Commit(); err != nil {
		class, code := classify(tx.ctx, err)
		switch {
		case endedBefore && errors.Is(err, tx.ctx.Err()):
			// Not sent: the transaction is rolled back, the class is the
			// context's (timeout or canceled).
		case errors.Is(err, sql.ErrTxDone): // database/sql rolled back already
			if class == ClassUnknown {
				class = ClassClosed
			}
		case class == ClassConnection, code == "" && !declared(err):
			// Not an answer from the server: COMMIT may have been applied.
			// (lib/pq even reports driver.ErrBadConn after sending it.) A
			// context that ended meanwhile does not tell otherwise. On
			// PostgreSQL the server is asked (see commitcheck.go).
			if !tx.xidTaken {
				class, err = ClassCommitUnknown, withCtxEnded(tx.ctx, err)
				break
			}
			if err := tx.resolveCommit(err, code); err != nil {
				return err
			}
			tx.committed.Store(true)
			m.countTxEnd(true)
			return nil
		}
		return m.newError(class, code, "commit", "", err)
	}
	tx.committed.Store(true)
	m.countTxEnd(true)
	return nil
}

// Rollback aborts the transaction. After Commit, or a previous Rollback, it
// does nothing and returns nil, so it can always be deferred.
func (tx *Tx) Rollback() error {
	if err := tx.usable("Rollback"); err != nil {
		return err
	}
	if tx.done.Swap(true) {
		return nil
	}
	tx.hooks.end() // dropped: they run only after a commit
	defer tx.s.m.txEnded(tx)
	defer tx.conn.release()
	tx.s.m.countTxEnd(false)
	err := tx.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) { // database/sql already rolled back for a canceled ctx
		err = nil
	}
	err = tx.s.m.wrap(tx.ctx, "rollback", "", err)
	tx.s.m.traceTxEnd(tx.ctx, tx.trace, false, err)
	return err
}

// ExecuteQuery is [Manager.ExecuteQuery] inside the transaction.
func (tx *Tx) ExecuteQuery(ctx context.Context, dest any, query string, args ...any) error {
	if err := tx.usable("ExecuteQuery"); err != nil {
		return err
	}
	return tx.s.executeQuery(ctx, dest, query, args)
}

// Get is [Manager.Get] inside the transaction.
func (tx *Tx) Get(ctx context.Context, dest any, query string, args ...any) error {
	if err := tx.usable("Get"); err != nil {
		return err
	}
	return tx.s.get(ctx, dest, query, args)
}

// Exec is [Manager.Exec] inside the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := tx.usable("Exec"); err != nil {
		return nil, err
	}
	return tx.s.exec(ctx, query, args)
}

// Query is [Manager.Query] inside the transaction. Close the rows before
// running another statement on the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if err := tx.usable("Query"); err != nil {
		return nil, err
	}
	return tx.s.query(ctx, query, args)
}

func (tx *Tx) session() session {
	if tx == nil {
		return session{}
	}
	return tx.s
}

// usable rejects a nil *Tx (the caller ignored BeginTx's error) and a Tx
// not made by BeginTx.
func (tx *Tx) usable(fn string) error {
	if tx == nil || tx.tx == nil {
		return &ArgumentError{Func: fn, Arg: "receiver", Reason: "nil *dbm.Tx (did BeginTx fail?); get a Tx from BeginTx or WithTx"}
	}
	return nil
}

// isolationLevels are the levels each driver can begin a transaction with.
// The drivers reject the others with texts that do not say which levels
// they take (lib/pq names the level by number); modernc.org/sqlite takes
// every level (SQLite's transactions are serializable).
var isolationLevels = map[string][]sql.IsolationLevel{
	DriverPostgres: {sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable},
	DriverPgx:      {sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSnapshot, sql.LevelSerializable},
	DriverMySQL:    {sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable},
}

// checkIsolation rejects an isolation level that does not exist, or that
// the manager's driver cannot begin a transaction with.
func checkIsolation(driver string, opts *sql.TxOptions) error {
	if opts == nil || opts.Isolation == sql.LevelDefault {
		return nil
	}
	level := opts.Isolation
	if level < 0 || level > sql.LevelLinearizable {
		return &ArgumentError{Func: "BeginTx", Arg: "opts.Isolation", Reason: level.String() + " is not an isolation level (see the sql.Level constants)"}
	}
	supported, known := isolationLevels[driver]
	if !known || slices.Contains(supported, level) {
		return nil
	}
	names := make([]string, len(supported)-1)
	for i, l := range supported[1:] {
		names[i] = l.String()
	}
	return &ArgumentError{Func: "BeginTx", Arg: "opts.Isolation", Reason: level.String() + " is not supported by " + driver + " (want one of " + strings.Join(names, ", ") + ")"}
}

// WithTx runs fn in a transaction: it commits when fn returns nil, and rolls
// back when fn returns an error (which WithTx returns) or panics (the panic
// continues after the rollback). fn must use the *Tx it is given, not the
// manager, for the statements that belong to the transaction. fn gets ctx,
// or with a [Tracer] the context its Start returned for the transaction.
//
// fn may run more than once (see below): write it so that a rerun starts
// afresh. Declare what it collects inside it, or reset it at its start (a
// slice it appends to from outside would hold the first run's rows too),
// and register side effects outside the database with [Tx.AfterCommit],
// which runs them once, after the commit that counts.
//
// If fn ends the transaction itself, WithTx returns nil after a Commit and
// an error matching [ErrClosed] after a Rollback.
//
// When the transaction fails in a way that leaves nothing committed, WithTx
// rolls back, pauses and runs fn again in a new transaction, up to
// Config.RetryMaxAttempts runs in all. It reruns fn only when the error fn
// (or BEGIN or COMMIT) returned is, or wraps, an error of the manager's own
// ([*Error]) of class [ClassSerialization], [ClassDeadlock],
// [ClassLockTimeout], [ClassConnection] or [ClassTooManyConnections], and
// does not match [ErrOutcomeUnknown]. Any other error is returned at once:
// fn's own errors, errors from outside the manager (an HTTP call's
// [net.Error] included), a pool timeout, a write fn made on the manager
// rather than on tx whose outcome is unknown (a rerun would repeat it), and
// a lost COMMIT reply ([ErrCommitUnknown]). fn may still run more than once:
// keep side effects outside the database (sending mail, charging a card)
// out of it, or in [Tx.AfterCommit].
func (m *Manager) WithTx(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx *Tx) error) error {
	if c := m.routed(); c != nil {
		return c.withTx(ctx, opts, fn)
	}
	if err := m.check(ctx, "WithTx"); err != nil {
		return err
	}
	if fn == nil {
		return &ArgumentError{Func: "WithTx", Arg: "fn", Reason: "nil function"}
	}
	attempt := 0
	return m.retry(ctx, "tx", "", txRerunnable, false, func() error {
		attempt++
		if m.traced() && attempt > 1 {
			return m.withTxOnce(context.WithValue(ctx, txAttemptKey{}, attempt), opts, fn)
		}
		return m.withTxOnce(ctx, opts, fn)
	})
}

// withTxOnce is one run of WithTx.
func (m *Manager) withTxOnce(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx *Tx) error) (err error) {
	tx, err := m.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	panicked := true
	defer func() {
		if panicked {
			_ = tx.Rollback()
		}
	}()
	err = fn(tx.ctx, tx) // tx.ctx is ctx, or the tracer's for the transaction
	panicked = false
	if err != nil && tx.committed.Load() {
		// fn committed, then failed at something else: running fn again
		// would apply the transaction twice.
		return &noRerun{err}
	}
	if err != nil {
		if rbErr := tx.Rollback(); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	if tx.done.Load() {
		if tx.committed.Load() {
			return nil
		}
		return tx.s.m.newError(ClassClosed, "", "commit", "", errFnRolledBack)
	}
	return tx.Commit()
}

var errFnRolledBack = errors.New("fn rolled back the transaction")
