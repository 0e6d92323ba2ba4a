// Package dbm manages a database/sql connection pool for an application:
// configuration from DB_* environment variables and .env files, a pool with
// sound defaults, struct-scanning queries, transactions, driver-independent
// error classes and statistics.
//
// # Connecting
//
// [LoadConfig] reads the configuration and [New] opens the pool and waits
// until the database answers:
//
//	cfg, err := dbm.LoadConfig(".env") // DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, ...
//	if err != nil {
//		return err // matches dbm.ErrConfig and names the variable
//	}
//	m, err := dbm.New(ctx, cfg)
//	if err != nil {
//		return err // dbm.ErrConnection: names host:port, never the password
//	}
//	defer m.Close()
//
// PostgreSQL through lib/pq ("postgres") is the default and is built in.
// For "pgx", "mysql" or "sqlite" the program imports the driver itself; see
// [Config.Driver]. [Wrap] turns an existing *sql.DB, such as go-sqlmock's,
// into a [Manager].
//
// # Querying
//
// [Manager.ExecuteQuery] stores every row in a slice of structs, pointers to
// structs, maps or scalars; [Manager.Get] stores one row. The generic
// [Select], [One] and [Iter] do the same for a type parameter, and accept a
// [*Manager], a [*Tx] or a [*Conn] alike (a [Querier]):
//
//	users, err := dbm.Select[User](ctx, m, "SELECT * FROM users WHERE active = ?", true)
//
// Columns map to fields by `db` tag, else by the lower-cased field name;
// two columns for one field are an [ErrDuplicateColumn] error. [ScanAll] and
// [ScanOne] apply the same mapping to *sql.Rows opened elsewhere.
// Placeholders are written in the driver's style and '?' is rebound to $1,
// $2, ... for PostgreSQL. A JSON column scans into and binds from a [JSON]
// value on every driver.
//
// # Transactions
//
// [Manager.WithTx] commits when its function returns nil and rolls back on
// an error or a panic. After a serialization failure or a deadlock it runs
// the function again in a new transaction, so the function must be safe to
// rerun; side effects outside the database go in [Tx.AfterCommit], which
// runs them once after the commit. [Manager.BeginTx] gives the caller a
// [*Tx] to end; `defer tx.Rollback()` is always safe. [Tx.Savepoint],
// [Tx.RollbackTo] and [Tx.Release] work inside one, and [Tx.CopyFrom]
// bulk-loads rows (COPY on PostgreSQL; see package dbm/dbmpgx for pgx).
//
// [Manager.Conn] pins one connection for statements that share session
// state (SET, temporary tables, advisory locks); [Conn.Close] discards it.
//
// On PostgreSQL a COMMIT whose reply is lost is resolved by asking the
// server ([WithCommitCheck]): [Tx.Commit] returns nil or a rolled-back
// error, and [ErrCommitUnknown] only when the server cannot be asked.
//
// # Connection lifecycle
//
// A pool made by [New] gives each connection a lifetime of its own
// (Config.ConnMaxLifetimeJitter), can keep Config.MinIdleConns warm and
// ping a connection idle for Config.ValidateIdleAfter before it is handed
// out. [WithOnConnect] sets a session up once per connection,
// [WithBeforeUse] and [WithAfterRelease] per checkout (a tenant for
// row-level security, with [Execer] statements on that connection).
//
// # Errors
//
// Every error from the manager keeps the driver's error reachable with
// [errors.As] and matches a sentinel such as [ErrUniqueViolation],
// [ErrNotFound] or [ErrConnection] with [errors.Is]. [Classify] returns the
// [Class]; bad arguments are [*ArgumentError] and unmappable columns
// [*ScanError].
//
// # Observability
//
// [Manager.Stats] returns the pool's [database/sql.DBStats] plus the
// manager's counters (statements, slow statements, transactions, commits,
// rollbacks, errors by [Class], retries, leaks); package dbm/dbmprom
// exports them to Prometheus. [WithLogger] sets the [log/slog.Logger] for slow statements
// (Config.SlowQueryThreshold) and for a pool that makes statements wait.
// [WithTracer] reports the start and end of every statement and
// transaction to a [Tracer], which can open spans or record latencies
// without package dbm depending on a tracing library. Nothing logged,
// traced or returned contains the password or argument values.
//
// # Replicas
//
// With Config.ReplicaHosts, one Manager serves a PostgreSQL primary and
// its streaming replicas: reads outside a transaction go to a healthy
// replica within Config.ReplicaMaxLag, writes, transactions and pinned
// connections to the primary, [Primary] forces the primary for one call,
// [ReadYourWrites] and [WithToken] make reads see earlier writes, and a
// standby promoted after the primary fails takes the writes. [Stats].Nodes
// describes each server. See docs/replicas.md.
//
// # Leaks
//
// [Manager.Leaks] lists the [Rows], [Tx] and [Conn] still open with the file:line
// that opened them; dropped ones are closed when the garbage collector
// finds them, which the manager makes happen when a caller waits for a
// connection. A wait is bounded by Config.AcquireTimeout (30s by default);
// the [ErrPoolTimeout] then names what is open. [Manager.Close] closes and
// rolls back what was left open and reports it with [ErrLeaked] (see
// docs/leaks.md and package dbm/dbmtest).
//
// # Testing
//
// Package dbm/dbmtest returns a Manager over go-sqlmock whose expectations
// are plain statements compared without regard to white space, and which
// fails the test when expectations are unmet or rows are left open. [Wrap]
// does the same for any *sql.DB.
package dbm
