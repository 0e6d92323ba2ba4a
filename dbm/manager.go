package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the default driver, "postgres"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
	"github.com/dbmanager-go/dbmanager/dbm/internal/scan"
)

// Manager owns a database/sql connection pool and runs statements on it:
// it rebinds placeholders, scans results into Go values, classifies errors
// and counts what it does. A Manager is safe for concurrent use; create one
// per database with [New] (or [Wrap] for an existing pool) and share it.
type Manager struct {
	db       *sqlx.DB
	driver   string
	numbered bool   // the driver uses $1 placeholders; '?' is rebound
	addr     string // what error messages and String show; no credentials
	log      *slog.Logger
	slow     time.Duration
	secrets  redact.Secrets // the password's forms, kept out of every error and log
	scanner  *scan.Scanner
	stats    counters
	obs      observer       // tracer, clock and pool watch; see observe.go
	retryPol retryPolicy    // retries and the pool wait; see retry.go
	dials    *dialConnector // makes the pool's connections; nil for Wrap
	queue    *connQueue     // the fair queue for connections; nil: a Wrap pool without a bound and NoAcquireTimeout (see wrapQueue)
	probe    *prober        // fails calls fast while the database is down; nil for Wrap (see probe.go)
	warm     *warmer        // keeps Config.MinIdleConns idle; nil when off
	commits  commitChecker  // resolves a lost COMMIT reply; see commitcheck.go
	leaks    *leakRegistry  // open Rows and Tx; nil when tracking is off
	stmts    stmtCache      // what each statement's text means; see stmtcache.go
	pooler   string         // Config.Pooler: statements that keep session state are refused
	cluster  *cluster       // nil: one server; else the primary and replicas (see cluster.go)

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	anchor    driver.Conn // keeps an in-memory SQLite database alive
}

// importHint tells the user which import registers a driver.
var importHint = map[string]string{
	DriverPgx:    `import _ "github.com/jackc/pgx/v5/stdlib"`,
	DriverMySQL:  `import _ "github.com/go-sql-driver/mysql"`,
	DriverSQLite: `import _ "modernc.org/sqlite"`,
}

// New validates cfg (zero fields take the defaults documented on [Config]),
// opens the pool and waits until the database answers a ping. A database
// that is still starting is normal, so New retries with a short backoff until
// ctx's deadline, or for Config.ConnectTimeout when ctx has none.
//
// Errors match [ErrConfig] for a bad configuration (including a driver that
// the program did not import) and [ErrConnection] when the server cannot be
// reached or refuses the login; the latter name the host and port, never the
// password. A refused TLS certificate is not retried. New logs a warning
// when it connects to a PostgreSQL server on another machine without
// verifying its certificate (an SSLMode other than verify-full or
// verify-ca): see docs/configuration.md#tls.
func New(ctx context.Context, cfg Config, opts ...Option) (*Manager, error) {
	if ctx == nil {
		return nil, errNilCtx("New")
	}
	cfg = cfg.withDefaults()
	err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(cfg.ReplicaHosts) > 0 {
		return newCluster(ctx, cfg, opts) // see cluster.go
	}
	o := buildOptions(opts)
	if err := o.check("New"); err != nil {
		return nil, err
	}
	if cfg, err = o.retrySettings("New", cfg); err != nil {
		return nil, err
	}
	if !slices.Contains(sql.Drivers(), cfg.Driver) {
		return nil, configErr("Driver", "driver is not registered; add "+importHint[cfg.Driver]+" to your program", cfg.Driver)
	}
	passwords := append(redact.Passwords(cfg.Driver, cfg.DSN), cfg.Password)
	for k, v := range cfg.Params {
		if redact.IsSecretParam(k) {
			passwords = append(passwords, v)
		}
	}
	secret := redact.NewSecrets(passwords...)
	if err := registerMySQLTLS(cfg); err != nil {
		return nil, err
	}
	dsn := cfg.dsn()
	db, dials, err := openPool(cfg.Driver, dsn, cfg.ConnectTimeout, o, secret)
	if err != nil {
		return nil, &Error{Class: ClassConfig, Op: "connect", Err: secret.ScrubConnect(err)}
	}
	dials.life = newLifecycle(cfg, o.life, time.Now)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxIdleConns)
	db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	db.SetConnMaxIdleTime(cfg.ConnMaxIdleTime)

	m := newManager(db, cfg, o, secret)
	m.dials = dials
	m.queue = newConnQueue(cfg.MaxOpenConns)
	m.probe = dials.probe
	m.addr = cfg.address()
	m.pooler = cfg.Pooler
	dials.life.checksFailed = func() { m.stats.idleChecksFailed.Add(1) }
	m.commits = newCommitChecker(cfg.Driver, o.commitCheck, true, cfg.ConnectTimeout)

	if cfg.unverifiedRemote() {
		m.log.Warn("dbm: the server's identity is not verified: someone on the network could pose as it",
			slog.String("addr", m.addr), slog.String("sslmode", cfg.SSLMode),
			slog.String("fix", "set DB_SSLMODE=verify-full and DB_SSLROOTCERT to the CA file (docs/configuration.md#tls)"))
	}
	if cfg.Driver == DriverSQLite && cfg.Database == ":memory:" && cfg.DSN == "" {
		// The database lives as long as one connection to it is open; hold
		// one outside the pool so idle-time and lifetime limits cannot drop
		// the data.
		if m.anchor, err = db.Driver().Open(dsn); err != nil {
			_ = db.Close()
			return nil, m.connectErr(err)
		}
	}
	if o.noConnect {
		// A replica set's node: its server may be down now; the warmer
		// waits for it like any caller would.
		m.warm = startWarmer(db.DB, cfg.MinIdleConns, cfg.ConnectTimeout)
		return m, nil
	}
	if err := m.connect(ctx, cfg.ConnectTimeout); err != nil {
		_ = m.Close()
		return nil, err
	}
	m.probeCommitCheck(ctx)
	m.warm = startWarmer(db.DB, cfg.MinIdleConns, cfg.ConnectTimeout)
	m.log.Debug("dbm: connected", slog.String("driver", cfg.Driver), slog.String("addr", m.addr), slog.Int("max_open_conns", cfg.MaxOpenConns))
	return m, nil
}

// openPool opens the pool on the driver's connector, wrapped so that each
// new connection is bounded by ConnectTimeout and its failure names the
// dial (see dial.go). lib/pq's connections also get a dialer that makes
// them end a call when its context ends, also on a dead network (see
// pqconn.go).
func openPool(driverName, dsn string, connectTimeout time.Duration, o options, secret redact.Secrets) (*sqlx.DB, *dialConnector, error) {
	c, err := newDialConnector(driverName, dsn, connectTimeout)
	if err != nil {
		return nil, nil, err
	}
	if ct, ok := o.tracer.(ConnectTracer); ok {
		c.tracer, c.now, c.secret = ct, o.now, secret
	}
	return sqlx.NewDb(sql.OpenDB(c), driverName), c, nil
}

// Wrap returns a Manager over an existing pool, such as one from go-sqlmock
// or one the application already configured. driverName selects the
// placeholder style ("postgres" and "pgx" rebind '?' to $1) and how errors
// are classified; any name is accepted. Wrap does not ping and does not
// change the pool's settings; [Manager.Close] closes db. What the manager
// itself decides takes [Config]'s defaults unless an option sets it: the
// retry policy ([WithRetryMaxAttempts], [WithRetryInitialBackoff],
// [WithRetryMaxBackoff]), the wait for a connection ([WithAcquireTimeout]),
// leak reports ([WithLeakThreshold], [WithLeakStacks]) and the slow
// statement log ([WithSlowQueryThreshold]). When db has a
// MaxOpenConnections bound, or the manager an acquire timeout (the
// default), callers wait for its connections in the manager's fair queue,
// which follows later changes of the bound on [Manager.DB]; only a pool
// that is unlimited when Wrap is called and a manager with
// [NoAcquireTimeout] have no queue. A wrapped pool has no fail-fast
// prober: the manager does not see its connection attempts.
func Wrap(db *sql.DB, driverName string, opts ...Option) (*Manager, error) {
	if db == nil {
		return nil, &ArgumentError{Func: "Wrap", Arg: "db", Reason: "nil *sql.DB"}
	}
	o := buildOptions(opts)
	if err := o.check("Wrap"); err != nil {
		return nil, err
	}
	if len(o.life.names) > 0 {
		return nil, &ArgumentError{Func: "Wrap", Arg: o.life.names[0], Reason: "lifecycle hooks need a pool whose connections the manager makes: use New (see docs/configuration.md#connection-lifecycle)"}
	}
	cfg, err := o.retrySettings("Wrap", wrapConfig(driverName))
	if err != nil {
		return nil, err
	}
	m := newManager(sqlx.NewDb(db, driverName), cfg, o, nil)
	m.queue = wrapQueue(db, m.retryPol.acquire)
	m.commits = newCommitChecker(driverName, o.commitCheck, false, DefaultConnectTimeout)
	m.addr = driverName
	return m, nil
}

// wrapQueue is the fair queue of a manager made by [Wrap] over db with the
// acquire timeout acquire (0: none): one that follows db's
// MaxOpenConnections, unlimited for now when db has no bound, as long as
// there is a bound to keep, db's or the timeout. An unbounded pool with
// [NoAcquireTimeout] has none (nil): no caller can wait in the queue and
// none is bounded, so its calls use the pool directly and pay nothing for
// a permit; a bound the application sets later on [Manager.DB] is then
// database/sql's alone (unordered waits, bounded by the caller's context).
// A manager with an acquire timeout has a queue, so a call never needs a
// timer of its own to bound its wait (see connQueue).
func wrapQueue(db *sql.DB, acquire time.Duration) *connQueue {
	maxOpen := db.Stats().MaxOpenConnections
	if maxOpen <= 0 && acquire <= 0 {
		return nil
	}
	return newConnQueue(maxOpen)
}

// wrapConfig is the Config a manager made by [Wrap] starts from: the
// defaults, for the settings the manager itself decides (the options win
// over them).
func wrapConfig(driverName string) Config {
	cfg := Config{}.withDefaults()
	cfg.Driver = driverName
	return cfg
}

// newManager makes the manager for [New] and [Wrap] from cfg (its defaults
// applied) and the options, which win over cfg's fields. secret is what to
// keep out of errors and logs.
func newManager(db *sqlx.DB, cfg Config, o options, secret redact.Secrets) *Manager {
	driverName := cfg.Driver
	m := &Manager{
		db:       db,
		driver:   driverName,
		numbered: driverName == DriverPostgres || driverName == DriverPgx || sqlx.BindType(driverName) == sqlx.DOLLAR,
		log:      o.logger,
		secrets:  secret,
		slow:     o.slowQueryThreshold(cfg.SlowQueryThreshold),
		scanner:  newScanner(o),
		obs:      newObserver(o),
		retryPol: newRetryPolicy(cfg),
	}
	m.retryPol.acquire = o.acquireTimeout(cfg.AcquireTimeout)
	m.leaks = newLeakRegistry(m.leakHooks(), o)
	m.leaks.configure(cfg.LeakThreshold, cfg.LeakStacks)
	return m
}

// What Rows and Tx report to the manager that made them: they call these
// methods, never the manager's fields.

// txBegun counts and tracks a transaction that has just begun.
func (m *Manager) txBegun(tx *Tx) {
	m.stats.transactions.Add(1)
	m.leaks.trackTx(tx)
}

// countTxEnd counts a transaction's COMMIT or ROLLBACK.
func (m *Manager) countTxEnd(committed bool) {
	if committed {
		m.stats.commits.Add(1)
	} else {
		m.stats.rollbacks.Add(1)
	}
}

// rowsOpened starts tracking r, which a statement has just returned.
func (m *Manager) rowsOpened(r *Rows) *Rows { return m.leaks.trackRows(r) }

// connOpened starts tracking c, a connection pinned by [Manager.Conn].
func (m *Manager) connOpened(c *Conn) { m.leaks.trackConn(c) }

// statementRun counts a statement sent to the database.
func (m *Manager) statementRun() { m.stats.statements.Add(1) }

// retried counts a statement or transaction that is run once more.
func (m *Manager) retried() { m.stats.retries.Add(1) }

// txEnded forgets tx: it was committed or rolled back. Tx calls it once.
func (m *Manager) txEnded(tx *Tx) { m.leaks.releaseTx(tx) }

// rowsClosed forgets rows: they were closed. It is idempotent.
func (m *Manager) rowsClosed(r *Rows) { m.leaks.releaseRows(r) }

// connClosed forgets c: it was closed. Conn calls it once.
func (m *Manager) connClosed(c *Conn) { m.leaks.releaseConn(c) }

// isClosed reports whether [Manager.Close] was called.
func (m *Manager) isClosed() bool { return m.closed.Load() }

// leakHooks gives the leak registry what it needs of m, and nothing more.
func (m *Manager) leakHooks() leakHooks {
	return leakHooks{
		log:       m.log,
		statement: m.secrets.Statement,
		poolStats: m.poolStats,
		queued:    func() int { return m.queue.waitingNow() },
		rolledBack: func(ctx context.Context, tt *txTrace, why error) {
			m.countTxEnd(false)
			m.traceTxEnd(ctx, tt, false, why)
		},
		closeError: func(e *LeakError) error { return m.newError(ClassLeaked, "", "close", "", e) },
	}
}

// connect pings until the database answers, the error is not transient, or
// the deadline passes.
func (m *Manager) connect(ctx context.Context, timeout time.Duration) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	backoff := 25 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		err := m.db.PingContext(ctx)
		if err == nil {
			return nil
		}
		// Keep the server's reason rather than "deadline exceeded": also
		// when the deadline cut this attempt's dial an instant before ctx
		// reports it (the dial's "i/o timeout" at the deadline says nothing
		// about the server; the refusal before it does).
		if last == nil || ctx.Err() == nil && time.Now().Before(deadline) {
			last = err
		}
		class, _ := classify(ctx, err)
		if class != ClassConnection && class != ClassTooManyConnections || ctx.Err() != nil || isCertificateFailure(err) {
			return m.connectErr(last)
		}
		m.log.Debug("dbm: database not answering yet", slog.String("addr", m.addr), slog.Int("attempt", attempt), slog.String("error", m.secrets.ScrubConnect(err).Error()))
		pause := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return m.connectErr(last)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (m *Manager) connectErr(err error) error {
	class, code := classify(context.Background(), err)
	var he *hookError
	if errors.As(err, &he) { // the dial worked; the application's OnConnect failed: keep its error
		return &Error{Class: class, Code: code, Op: "connect", Err: fmt.Errorf("%s at %s: %w", m.driver, m.addr, m.secrets.Scrub(he))}
	}
	return &Error{Class: class, Code: code, Op: "connect", Err: fmt.Errorf("%s at %s: %w", m.driver, m.addr, m.secrets.ScrubConnect(err))}
}

// Ping checks that the database answers. Connections in the pool that
// turn out broken (the server restarted, or ended them) are replaced on the
// way, so after a restart Ping reports on the server, not on the pool.
func (m *Manager) Ping(ctx context.Context) error {
	if c := m.routed(); c != nil {
		return c.ping(ctx)
	}
	if err := m.check(ctx, "Ping"); err != nil {
		return err
	}
	if err := m.ping(ctx); err != nil {
		return m.wrap(ctx, "ping", "", err)
	}
	return nil
}

// DB returns the underlying pool, for what the manager does not cover
// (COPY, LISTEN, driver-specific calls). Statements run on it bypass the
// manager's statistics and error classification. With lib/pq, the driver
// connection that [sql.Conn.Raw] passes is the manager's wrapper (see
// docs/drivers.md); its Unwrap() driver.Conn method returns lib/pq's own.
// Statements run on it are sent as written: pass them through
// [Manager.Rebind] (not sqlx's DB().Rebind) to write '?' as elsewhere.
// With Config.ReplicaHosts it is the pool of the configured primary (Host,
// Port), also after writes moved to another server (see docs/replicas.md).
func (m *Manager) DB() *sqlx.DB {
	if m == nil {
		return nil
	}
	return m.db
}

// DriverName returns the database/sql driver name the manager was created
// with.
func (m *Manager) DriverName() string {
	if m == nil {
		return ""
	}
	return m.driver
}

// Close closes the pool. Rows and transactions still open do not stop it:
// Close lists them, closes the rows and rolls the transactions back (never
// commits them), logs what it closed once at WARN with the location that
// opened each, and returns an error matching [ErrLeaked] whose [*LeakError]
// lists them. Their connections then close with the pool, so no server
// session of the manager is left, none idle in a transaction holding locks.
// Like [sql.DB.Close], it does not wait for statements in flight: their
// connections close when those statements return; work that still uses a
// resource Close ended gets an error, never a panic. Close is idempotent;
// afterwards every call on the manager returns an error matching
// [ErrClosed].
func (m *Manager) Close() error {
	if m == nil {
		return errNilManager("Close")
	}
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.warm.stop()
		if m.cluster != nil {
			m.closeErr = m.cluster.close()
			return
		}
		leaked := m.leaks.closeLeaks() // before the pool: their connections come back to it
		err := m.db.Close()
		if m.anchor != nil {
			err = errors.Join(err, m.anchor.Close())
		}
		if err != nil {
			m.closeErr = m.wrap(context.Background(), "close", "", err)
		}
		m.closeErr = errors.Join(m.closeErr, leaked)
	})
	return m.closeErr
}

// String describes the manager: driver and address, never credentials.
func (m *Manager) String() string {
	if m == nil {
		return "dbm.Manager{nil}"
	}
	return "dbm.Manager{" + m.driver + " " + m.addr + "}"
}

// Format implements [fmt.Formatter] so that no verb prints the manager's
// internals.
func (m *Manager) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }

// check rejects calls on a nil or closed manager or with a nil context.
func (m *Manager) check(ctx context.Context, fn string) error {
	if m == nil {
		return errNilManager(fn)
	}
	if ctx == nil {
		return errNilCtx(fn)
	}
	if m.closed.Load() {
		return m.newError(ClassClosed, "", opOf[fn], "", errManagerClosed)
	}
	return nil
}

// opOf maps a method to the Error.Op of the work it does.
var opOf = map[string]string{
	"ExecuteQuery": "query", "Select": "query", "Get": "query", "Query": "query",
	"Exec": "exec", "BeginTx": "begin", "WithTx": "begin", "Ping": "ping", "Conn": "conn",
}

var errManagerClosed = errors.New("manager is closed")

func errNilCtx(fn string) error {
	return &ArgumentError{Func: fn, Arg: "ctx", Reason: "nil context (use context.Background())"}
}

func errNilManager(fn string) error {
	return &ArgumentError{Func: fn, Arg: "receiver", Reason: "nil *dbm.Manager (did New or Wrap fail?)"}
}

// wrap turns a driver or database/sql error into an *Error with its class.
// Errors that are already classified pass through.
func (m *Manager) wrap(ctx context.Context, op, query string, err error) error {
	return m.wrapMarked(ctx, op, query, err, 0)
}

// wrapMarked is wrap for a statement's error, built with what marks say.
func (m *Manager) wrapMarked(ctx context.Context, op, query string, err error, marks errMarks) error {
	if err == nil {
		return nil
	}
	var e *Error
	var ae *ArgumentError
	if errors.As(err, &e) || errors.As(err, &ae) {
		return err // already classified (and counted), or a caller's mistake
	}
	var se *ScanError
	if errors.As(err, &se) {
		m.stats.errors[ClassScan].Add(1)
		return err
	}
	class, code := classify(ctx, err)
	switch {
	case class == ClassUnknown && errors.Is(err, sql.ErrTxDone):
		class = ClassClosed
	case m.closed.Load() && class == ClassUnknown:
		class = ClassClosed
	}
	return m.newErrorMarked(class, code, op, query, err, marks)
}

// newError counts an error of the given class and builds it, withholding
// driver text or a statement that contains the password.
func (m *Manager) newError(class Class, code, op, query string, err error) *Error {
	return m.newErrorMarked(class, code, op, query, err, 0)
}

// newErrorMarked is newError, with the cause wrapped as marks say.
func (m *Manager) newErrorMarked(class Class, code, op, query string, err error, marks errMarks) *Error {
	m.stats.errors[class].Add(1)
	return &Error{Class: class, Code: code, Op: op, Query: m.secrets.Statement(query), Err: marks.wrapErr(class, code, m.secrets.Scrub(err))}
}
