package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// The connection lifecycle of a pool made by [New]: every connection the
// manager's dialer makes (see dial.go) is wrapped in a [lifeConn], which
// database/sql asks, through the driver interfaces it already uses, whether
// the connection may still be used:
//
//   - database/sql calls [driver.Validator] IsValid when it takes a
//     connection back, and [driver.SessionResetter] ResetSession when it
//     hands a used connection out again. A lifeConn past its own, jittered
//     lifetime answers false or [driver.ErrBadConn], and database/sql closes
//     it (and, at hand-out, takes or makes another: the caller never sees
//     it). database/sql's single SetConnMaxLifetime stays as the upper
//     bound, for connections that sit idle.
//   - ResetSession also pings a connection that sat idle for at least
//     Config.ValidateIdleAfter, and reports a failed ping as ErrBadConn.
//   - OnConnect runs once on each new connection before database/sql gets
//     it; BeforeUse runs before the first statement (or BEGIN) of each
//     checkout, on the caller's context; AfterRelease runs when
//     database/sql takes a used connection back (from IsValid).

// Execer runs a statement on the one connection a lifecycle hook
// ([WithOnConnect], [WithBeforeUse], [WithAfterRelease]) is given. The
// statement is sent as written, in the driver's own placeholder style ($1
// on PostgreSQL, ? on MySQL and SQLite): a hook runs below the manager,
// which neither rebinds, retries, classifies nor counts it.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ConnHook is a lifecycle hook: it gets the context of the call that needs
// the connection (for OnConnect, of the dial; for AfterRelease, a context
// bounded by Config.ConnectTimeout) and the connection itself.
type ConnHook func(ctx context.Context, conn Execer) error

// WithOnConnect sets a function that runs once on every new connection of
// a pool made by [New], before the pool uses it: session set-up such as
// `SET application_name = 'billing'` or `SET search_path = app, public`.
// When fn fails, the connection is closed and the dial fails with fn's
// error wrapped in an [*Error] of [ClassConnection] (the statement that
// needed the connection gets it, and reads are retried as for any failed
// dial). [Wrap] rejects it with an [*ArgumentError]: that pool's
// connections are not made by the manager. A nil fn is an error too.
func WithOnConnect(fn ConnHook) Option {
	return hookOption("WithOnConnect", fn, func(o *options) { o.life.onConnect = fn })
}

// WithBeforeUse sets a function that runs each time the pool hands a
// connection out, before the first statement of that checkout, with the
// caller's context: per-checkout set-up such as row-level security's
// `SELECT set_config('app.tenant', $1, false)` with a tenant taken from
// ctx. For a transaction it runs right after BEGIN, inside the
// transaction, so `SET LOCAL` and set_config(..., true) last until COMMIT
// or ROLLBACK. When fn fails, the statement (or BeginTx, which rolls back)
// fails with fn's error and the connection is closed, so no connection
// whose set-up failed is used. Each statement outside a transaction is its
// own checkout: fn costs one round trip per statement. A [Conn] is one
// checkout: fn runs once, before its first statement (inside its first
// transaction only if that comes first). [Wrap] rejects it.
func WithBeforeUse(fn ConnHook) Option {
	return hookOption("WithBeforeUse", fn, func(o *options) { o.life.beforeUse = fn })
}

// WithAfterRelease sets a function that runs when the pool takes back a
// connection that [WithBeforeUse]'s function (or any statement) used, to
// undo per-checkout state: `RESET app.tenant`, `DISCARD ALL`. It runs on a
// context bounded by Config.ConnectTimeout; when it fails, the connection
// is closed instead of reused, so state it could not undo never reaches
// the next caller. [Wrap] rejects it.
func WithAfterRelease(fn ConnHook) Option {
	return hookOption("WithAfterRelease", fn, func(o *options) { o.life.afterRelease = fn })
}

func hookOption(name string, fn ConnHook, set func(*options)) Option {
	return optionFunc(func(o *options) {
		if fn == nil {
			o.invalid(name, "nil function")
			return
		}
		set(o)
		o.life.names = append(o.life.names, name)
	})
}

// hooks are the lifecycle hooks given as options.
type hooks struct {
	onConnect, beforeUse, afterRelease ConnHook
	names                              []string // the options that set them, for Wrap's error
}

// lifecycle is what the dialer applies to each connection it makes.
type lifecycle struct {
	hooks
	lifetime     time.Duration // Config.ConnMaxLifetime; 0: none
	jitter       time.Duration // up to this much is taken off lifetime, per connection
	idleCheck    time.Duration // Config.ValidateIdleAfter; 0: off
	hookTimeout  time.Duration // bound on AfterRelease (Config.ConnectTimeout)
	now          func() time.Time
	draw         func(n int64) int64 // rand.Int64N; tests replace it
	checksFailed func()              // counts a failed idle check; may be nil
}

func newLifecycle(cfg Config, h hooks, now func() time.Time) *lifecycle {
	l := &lifecycle{hooks: h, lifetime: cfg.ConnMaxLifetime, jitter: max(cfg.ConnMaxLifetimeJitter, 0),
		idleCheck: cfg.ValidateIdleAfter, hookTimeout: cfg.ConnectTimeout, now: now, draw: rand.Int64N}
	if l.lifetime <= 0 {
		l.jitter = 0
	}
	return l
}

// active reports whether connections need the wrapper at all.
func (l *lifecycle) active() bool {
	return l != nil && (l.jitter > 0 || l.idleCheck > 0 || l.onConnect != nil || l.beforeUse != nil || l.afterRelease != nil)
}

// wrap runs OnConnect on a new connection and wraps it. On an error the
// connection is closed.
func (l *lifecycle) wrap(ctx context.Context, conn driver.Conn) (driver.Conn, error) {
	born := l.now()
	c := &lifeConn{inner: conn, l: l, released: born, pending: l.beforeUse != nil}
	if l.jitter > 0 {
		c.deadline = born.Add(l.lifetime - time.Duration(l.draw(int64(l.jitter)+1)))
	}
	if l.onConnect != nil {
		if err := l.onConnect(ctx, rawExecer{conn}); err != nil {
			_ = conn.Close()
			return nil, &hookError{hook: "OnConnect", err: err}
		}
	}
	return c, nil
}

// hookError is the error of a lifecycle hook: never driver.ErrBadConn to
// database/sql (which would retry the call on another connection, hiding
// it), always the hook's error to the caller.
type hookError struct {
	hook string
	err  error
}

func (e *hookError) Error() string { return e.hook + " hook: " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// lifeConn is a connection of a pool made by [New] with its own lifetime
// and hooks. database/sql uses a connection from one goroutine at a time
// and calls IsValid and ResetSession with it held, but the fields are
// guarded anyway: IsValid may run while a statement's context watcher is
// still ending.
type lifeConn struct {
	inner driver.Conn
	l     *lifecycle

	mu       sync.Mutex // protects the fields below
	deadline time.Time  // when it expires; zero: no lifetime of its own
	released time.Time  // when the pool last took it back (or it was made)
	pending  bool       // BeforeUse is due before the next statement
	used     bool       // BeforeUse ran (or a statement did) since the last release
}

// expired reports whether the connection outlived its own lifetime.
func (c *lifeConn) expiredLocked(now time.Time) bool {
	return !c.deadline.IsZero() && !now.Before(c.deadline)
}

// ResetSession is called by database/sql when it hands out a connection
// used before: the driver's own reset, then the lifetime and idle checks.
func (c *lifeConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		if err := r.ResetSession(ctx); err != nil {
			return err
		}
	}
	now := c.l.now()
	c.mu.Lock()
	expired, idle := c.expiredLocked(now), now.Sub(c.released)
	c.mu.Unlock()
	if expired {
		return driver.ErrBadConn
	}
	if c.l.idleCheck > 0 && idle >= c.l.idleCheck {
		if p, ok := c.inner.(driver.Pinger); ok {
			if err := p.Ping(ctx); err != nil {
				if c.l.checksFailed != nil && ctx.Err() == nil {
					c.l.checksFailed()
				}
				return driver.ErrBadConn
			}
		}
	}
	return nil
}

// IsValid is called by database/sql when it takes the connection back:
// false closes it. AfterRelease runs here, after a checkout that used it.
func (c *lifeConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok && !v.IsValid() {
		return false
	}
	c.mu.Lock()
	used := c.used
	// BeforeUse is due again at the next checkout, whether or not
	// database/sql resets the session then.
	c.used, c.pending = false, c.l.beforeUse != nil
	c.mu.Unlock()
	ok := true
	if used && c.l.afterRelease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.l.hookTimeout)
		ok = c.l.afterRelease(ctx, rawExecer{c.inner}) == nil
		cancel()
	}
	now := c.l.now()
	c.mu.Lock()
	c.released = now
	ok = ok && !c.expiredLocked(now)
	c.mu.Unlock()
	return ok
}

// before runs BeforeUse if it is due, on the caller's context.
func (c *lifeConn) before(ctx context.Context) error {
	if c.l.beforeUse == nil && c.l.afterRelease == nil {
		return nil // nothing to run or to undo: no lock per statement
	}
	c.mu.Lock()
	due := c.pending
	c.pending, c.used = false, true
	c.mu.Unlock()
	if !due {
		return nil
	}
	if err := c.l.beforeUse(ctx, rawExecer{c.inner}); err != nil {
		return &hookError{hook: "BeforeUse", err: err}
	}
	return nil
}

func (c *lifeConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *lifeConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.before(ctx); err != nil {
		c.spoil()
		return nil, err
	}
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.inner.Prepare(query)
}

func (c *lifeConn) Close() error { return c.inner.Close() }

func (c *lifeConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx begins the transaction, then runs BeforeUse inside it. When the
// hook fails, the transaction is rolled back and the connection reported
// unusable, so no work runs without its set-up.
func (c *lifeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var tx driver.Tx
	var err error
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else if opts.Isolation != 0 || opts.ReadOnly {
		return nil, errors.New("dbm: the driver cannot begin a transaction with options")
	} else {
		//lint:ignore SA1019 the driver has nothing newer
		tx, err = c.inner.Begin()
	}
	if err != nil {
		return nil, err
	}
	if err := c.before(ctx); err != nil {
		_ = tx.Rollback()
		c.spoil()
		return nil, err
	}
	return tx, nil
}

// spoil makes the connection fail its next validation: its hook failed.
func (c *lifeConn) spoil() {
	c.mu.Lock()
	c.deadline = time.Unix(1, 0)
	c.mu.Unlock()
}

func (c *lifeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.before(ctx); err != nil {
		c.spoil()
		return nil, err
	}
	if e, ok := c.inner.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip // database/sql prepares it instead
}

func (c *lifeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.before(ctx); err != nil {
		c.spoil()
		return nil, err
	}
	if q, ok := c.inner.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

// Ping is the driver's; it does not count as a use (no hook runs).
func (c *lifeConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *lifeConn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.inner.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Unwrap returns the driver's own connection (through the manager's other
// wrappers), for driver functions that need it via [sql.Conn.Raw].
func (c *lifeConn) Unwrap() driver.Conn {
	conn := c.inner
	for {
		u, ok := conn.(interface{ Unwrap() driver.Conn })
		if !ok {
			return conn
		}
		conn = u.Unwrap()
	}
}

// rawExecer runs a hook's statements on a driver connection.
type rawExecer struct{ conn driver.Conn }

func (r rawExecer) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	nvs := make([]driver.NamedValue, len(args))
	checker, _ := r.conn.(driver.NamedValueChecker)
	for i, a := range args {
		nvs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		err := driver.ErrSkip
		if checker != nil {
			err = checker.CheckNamedValue(&nvs[i])
		}
		if errors.Is(err, driver.ErrSkip) {
			nvs[i].Value, err = driver.DefaultParameterConverter.ConvertValue(a)
		}
		if err != nil {
			return nil, &ArgumentError{Func: "Execer.Exec", Arg: "args", Reason: err.Error()}
		}
	}
	if e, ok := r.conn.(driver.ExecerContext); ok {
		res, err := e.ExecContext(ctx, query, nvs)
		if !errors.Is(err, driver.ErrSkip) {
			return res, err
		}
	}
	var st driver.Stmt
	var err error
	if p, ok := r.conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = r.conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if se, ok := st.(driver.StmtExecContext); ok {
		return se.ExecContext(ctx, nvs)
	}
	vals := make([]driver.Value, len(nvs))
	for i, nv := range nvs {
		vals[i] = nv.Value
	}
	//lint:ignore SA1019 the driver has nothing newer
	return st.Exec(vals)
}

// NoLifetimeJitter, as Config.ConnMaxLifetimeJitter
// (DB_CONN_MAX_LIFETIME_JITTER=-1ns), gives every connection the same
// lifetime, ConnMaxLifetime, as database/sql alone does.
const NoLifetimeJitter time.Duration = -1

// validateLifecycle checks the lifecycle fields of a Config with its
// defaults applied.
func (c Config) validateLifecycle() error {
	if c.ConnMaxLifetimeJitter < 0 && c.ConnMaxLifetimeJitter != NoLifetimeJitter {
		return configErr("ConnMaxLifetimeJitter", "must not be negative (NoLifetimeJitter, -1ns, turns it off)", c.ConnMaxLifetimeJitter)
	}
	if c.ConnMaxLifetimeJitter > 0 && c.ConnMaxLifetime > 0 && c.ConnMaxLifetimeJitter >= c.ConnMaxLifetime {
		return configErr("ConnMaxLifetimeJitter", "must be smaller than ConnMaxLifetime ("+c.ConnMaxLifetime.String()+")", c.ConnMaxLifetimeJitter)
	}
	if c.MinIdleConns < 0 {
		return configErr("MinIdleConns", "must not be negative", c.MinIdleConns)
	}
	if c.MinIdleConns > c.MaxIdleConns {
		return configErr("MinIdleConns", "larger than MaxIdleConns ("+strconv.Itoa(c.MaxIdleConns)+"): idle connections above it are closed", c.MinIdleConns)
	}
	if c.MinIdleConns > c.MaxOpenConns {
		return configErr("MinIdleConns", "larger than MaxOpenConns ("+strconv.Itoa(c.MaxOpenConns)+")", c.MinIdleConns)
	}
	return nil
}
