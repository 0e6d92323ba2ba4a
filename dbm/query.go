package dbm

import (
	"context"
	"database/sql"
	"iter"
	"reflect"
	"strconv"

	"github.com/dbmanager-go/dbmanager/dbm/internal/scan"
	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// Querier is what can run statements: a [*Manager] (on the pool), a [*Tx]
// (inside its transaction) and a [*Conn] (on one pinned connection). The generic helpers [Select], [One] and [Iter]
// take a Querier, so the same code runs in and out of a transaction.
//
// It is sealed (only this package implements it) because the helpers reach
// the manager's scan-plan cache through it. To test code that takes a
// Querier, pass a Manager made with [Wrap] over go-sqlmock.
type Querier interface {
	ExecuteQuery(ctx context.Context, dest any, query string, args ...any) error
	Get(ctx context.Context, dest any, query string, args ...any) error
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*Rows, error)
	session() session
}

// executor is the part of *sql.DB and *sql.Tx that sessions use.
type executor interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// session runs statements for a Manager or a Tx: every query method is
// written once, here.
type session struct {
	m       *Manager
	ex      executor
	tx      *Tx // nil outside a transaction
	attempt int // which try of a retried statement this is (0 or 1: the first)
	// ex's connection when the statement has one of its own; its Rows take it
	conn *sql.Conn
	use  *connUse // conn's, for the ReleaseTracer; nil without one
	pin  *Conn    // the pinned connection ex belongs to, if any (see conn.go)
	// sentWrite: the statements are writes that autocommit sends (see
	// markSentWrite)
	sentWrite bool
	// permit: the statement holds a permit of the manager's queue, which
	// its Rows take over (see connQueue)
	permit bool
}

// prepare checks the call and returns the statement as it is sent
// (trailing semicolons trimmed, '?' rebound for $n drivers), whether it
// only reads.
func (s session) prepare(ctx context.Context, fn, query string) (stmtRef, error) {
	if err := s.m.check(ctx, fn); err != nil {
		return stmtRef{}, err
	}
	if s.tx != nil && s.tx.done.Load() {
		return stmtRef{}, s.m.newError(ClassClosed, "", opOf[fn], query, sql.ErrTxDone)
	}
	if s.pin != nil && s.pin.done.Load() {
		return stmtRef{}, s.m.newError(ClassClosed, "", opOf[fn], query, sql.ErrConnDone)
	}
	st := s.m.stmts.lookup(query, s.m.numbered, s.m.driver == DriverSQLite)
	if st.blank {
		return stmtRef{}, &ArgumentError{Func: fn, Arg: "query", Reason: "empty statement"}
	}
	if s.tx != nil {
		s.tx.noteStatement(ctx, fn, st.read)
	}
	if s.m.pooler != "" {
		if what := sqltext.SessionState(st.sent); what != "" {
			return stmtRef{}, &ArgumentError{Func: fn, Arg: "query", Reason: what + ": " + s.m.pooler +
				" in transaction mode does not keep session state (Config.Pooler); see docs/configuration.md#pgbouncer"}
		}
	}
	return st, nil
}

// prepareArgs is prepare for a statement with its arguments: named
// parameters and IN lists are bound (see [Manager.bind]), and SQLite's
// arguments are counted. What the statement is (a read or not, its plan
// arguments, for SQLite) is judged from the caller's text, so that the texts of IN lists of
// every length do not fill the caches.
func (s session) prepareArgs(ctx context.Context, fn, query string, args []any) (stmtRef, []any, error) {
	st, err := s.prepare(ctx, fn, query)
	if err != nil {
		return stmtRef{}, nil, err
	}
	if len(args) == 0 {
		return st, args, nil // nothing to bind, nothing more to count
	}
	rw, changed, err := s.m.bind(fn, query, args)
	if err != nil {
		return stmtRef{}, nil, err
	}
	if changed {
		st.sent, args = sentText(rw.text, s.m.numbered), rw.args
		if st.args >= 0 {
			if n, plain := sqltext.Marks(st.sent); plain {
				st.args = n
			}
		}
	}
	if st.args >= 0 && len(args) > st.args && !hasNamed(args) {
		// SQLite binds the arguments its statement names and ignores any
		// more: a call with one too many would run, wrongly, without a word.
		// (Too few, it reports itself.)
		return stmtRef{}, nil, &ArgumentError{Func: fn, Arg: "args",
			Reason: strconv.Itoa(len(args)) + " arguments for a statement with " + strconv.Itoa(st.args) + " placeholders (SQLite would ignore the rest)"}
	}
	return st, args, nil
}

// hasNamed reports whether args holds a [sql.NamedArg], which SQLite binds
// by name: then the placeholders cannot be counted by position.
func hasNamed(args []any) bool {
	for _, a := range args {
		if _, ok := a.(sql.NamedArg); ok {
			return true
		}
	}
	return false
}

// finish records a statement that ran (see [session.start]), turns its
// error into an *Error, and logs and traces it.
func (m *Manager) finish(ctx context.Context, st *stmt, rows int, err error) error {
	m.statementRun()
	if err != nil {
		err = m.wrapMarked(ctx, st.op, st.query, err, st.marks)
	}
	if m.observed() {
		m.observe(ctx, st, rows, err)
	}
	return err
}

func (s session) executeQuery(ctx context.Context, dest any, query string, args []any) error {
	d, err := s.scanner().Dest("ExecuteQuery", dest)
	if err != nil {
		return scanErr(err)
	}
	err = s.run(ctx, "ExecuteQuery", query, args, &d, nil)
	if err != nil {
		d.Empty()
		return err
	}
	d.Done()
	return nil
}

// scanner is the manager's scanner; a nil manager's (whose calls fail in
// [session.prepare], after their destination is checked) is the default
// one, as [ScanAll] uses.
func (s session) scanner() *scan.Scanner {
	if s.m == nil {
		return sqlRowsScanner()
	}
	return s.m.scanner
}

// selectRows is [Select]: ExecuteQuery into a []T it makes itself, so the
// slice grows with a plain append instead of through reflect.
func selectRows[T any](ctx context.Context, s session, query string, args []any) ([]T, error) {
	t, err := scan.ElemTarget("Select", "T", reflect.TypeFor[T]())
	if err != nil {
		return nil, scanErr(err)
	}
	var out []T
	err = s.run(ctx, "Select", query, args, nil, func(rows *sql.Rows) (int, error) {
		out, err = scan.Append(s.m.scanner, rows, t, lenient(ctx), out)
		return len(out), scanErr(err)
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

func (s session) get(ctx context.Context, dest any, query string, args []any) error {
	elem, err := oneTarget("Get", dest)
	if err != nil {
		return err
	}
	scanned := false // an attempt stored a row in dest
	return s.run(ctx, "Get", query, args, nil, func(rows *sql.Rows) (int, error) {
		if scanned {
			// A retry: the failed attempt's row must not stay in dest, if
			// this one finds none (or fails before storing its own).
			elem.SetZero()
			scanned = false
		}
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return 0, err
			}
			return 0, sql.ErrNoRows
		}
		scanned = true
		return 1, scanErr(s.m.scanner.One(rows, nil, elem, lenient(ctx)))
	})
}

// run prepares query, runs it, stores its rows in d (ExecuteQuery's
// destination) or else hands them to read, closes them and records the
// statement. read returns how many rows it stored.
//
// A read on the manager's pool, the common call, takes a shorter way
// than autocommit's: its first attempt runs here, with no closure built
// and no tracer of the acquire to tell, and the retry machinery is set up
// only once it has failed. The one-row benchmark shows what the layers
// cost (docs/benchmarks.md, "The read's own path"); what runs is the same.
func (s session) run(ctx context.Context, fn, query string, args []any, d *scan.Dest, read func(*sql.Rows) (int, error)) error {
	q, args, err := s.prepareArgs(ctx, fn, query, args)
	if err != nil {
		return err
	}
	m := s.m
	if s.tx == nil && s.pin == nil && q.read && m.queue != nil && m.obs.acquirer == nil {
		if idem, marked := idempotence(ctx); !marked || idem {
			// autocommit's pool path for a read (see poolAttempt)
			s.attempt, s.sentWrite = s.attempt+1, false
			if err = m.takePermit(ctx, "query", q.sent); err == nil {
				s.permit = true
				err = s.readRows(ctx, q, args, d, read)
				m.queue.give()
			}
			if err == nil {
				return nil
			}
			return m.retryAfter(ctx, "query", q.sent, readRetryable, true, func() error {
				return s.poolAttempt(ctx, "query", q.sent, false, func(s session) error {
					return s.readRows(ctx, q, args, d, read)
				})
			}, err)
		}
	}
	return s.autocommit(ctx, "query", q, false, func(s session) error {
		return s.readRows(ctx, q, args, d, read)
	})
}

// readRows is one attempt of run: it sends q, reads its rows into d or
// through read, closes them and records the statement.
//
// No deferred Close: a panic inside rows.Scan (a user's sql.Scanner)
// leaves database/sql's rows lock held, and Close would then block
// forever; the connection is lost either way.
func (s session) readRows(ctx context.Context, q stmtRef, args []any, d *scan.Dest, read func(*sql.Rows) (int, error)) error {
	st := s.newStmt(TraceQuery, q.sent)
	sctx := s.start(ctx, &st) // the statement's: the tracer's, when one is set
	rows, err := s.ex.QueryContext(sctx, q.sent, args...)
	if err != nil {
		return s.m.finish(sctx, &st, -1, err)
	}
	var n int
	if d != nil {
		n, err = s.m.scanner.All(rows, d, lenient(ctx)) // the caller's ctx, as read closures see
		err = scanErr(err)
	} else {
		n, err = read(rows)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	st.marks |= markMidResult
	return s.m.finish(sctx, &st, n, err)
}

func (s session) exec(ctx context.Context, query string, args []any) (sql.Result, error) {
	st, args, err := s.prepareArgs(ctx, "Exec", query, args)
	if err != nil {
		return nil, err
	}
	var res sql.Result
	err = s.autocommit(ctx, "exec", st, false, func(s session) (err error) {
		res, err = s.execOnce(ctx, st.sent, args)
		return err
	})
	return res, err
}

// execOnce is one attempt of exec.
func (s session) execOnce(ctx context.Context, q string, args []any) (sql.Result, error) {
	st := s.newStmt(TraceExec, q)
	ctx = s.start(ctx, &st)
	res, err := s.ex.ExecContext(ctx, q, args...)
	if err = s.m.finish(ctx, &st, -1, err); err != nil {
		return nil, err
	}
	return res, nil
}

func (s session) query(ctx context.Context, query string, args []any) (*Rows, error) {
	st, args, err := s.prepareArgs(ctx, "Query", query, args)
	if err != nil {
		return nil, err
	}
	var rows *Rows
	err = s.autocommit(ctx, "query", st, true, func(s session) (err error) {
		rows, err = s.queryOnce(ctx, st, args)
		return err
	})
	return rows, err
}

// queryOnce is one attempt of query.
func (s session) queryOnce(ctx context.Context, q stmtRef, args []any) (*Rows, error) {
	st := s.newStmt(TraceQuery, q.sent)
	ctx = s.start(ctx, &st)
	rows, err := s.ex.QueryContext(ctx, q.sent, args...)
	if err = s.m.finish(ctx, &st, -1, err); err != nil {
		return nil, err
	}
	r := s.m.rowsOpened(&Rows{rows: rows, m: s.m, ctx: ctx, query: q.sent, conn: s.own(ctx), tx: s.tx})
	if s.pin != nil && s.tx == nil {
		s.pin.add(openOnConn{rows: r}) // Conn.Close closes them first
	}
	return r, nil
}

// own is what the Rows of a statement take over from it: its connection of
// its own and its permit, when it has them.
func (s session) own(ctx context.Context) *ownedConn {
	if !s.permit {
		return own(ctx, s.conn, nil, s.use)
	}
	return own(ctx, s.conn, s.m.queue, s.use)
}

// checkHelper checks the arguments of the generic helpers (Select, One,
// Iter) before anything runs, so that errors name the helper the caller
// called.
func checkHelper[T any](fn string, ctx context.Context, q Querier) error {
	if q == nil || q.session().m == nil {
		return &ArgumentError{Func: fn, Arg: "q", Reason: "nil Querier (a nil *dbm.Manager, *dbm.Tx or *dbm.Conn)"}
	}
	if ctx == nil {
		return errNilCtx(fn)
	}
	t := reflect.TypeFor[T]()
	if err := scan.CheckElem(fn, "T", t); err != nil {
		return scanErr(err)
	}
	if fn == "One" {
		return scanErr(scan.CheckOneRow(fn, "T", t))
	}
	return nil
}

// Select runs query and returns every row as a T: a struct (columns matched
// to fields by `db` tag or lower-cased name), a pointer to one, a scalar for
// single-column results, or map[string]any. It is [Manager.ExecuteQuery]
// with the slice made for you.
func Select[T any](ctx context.Context, q Querier, query string, args ...any) ([]T, error) {
	if err := checkHelper[T]("Select", ctx, q); err != nil {
		return nil, err
	}
	if c := routedQuerier(q); c != nil {
		return clusterSelect[T](ctx, c, query, args)
	}
	return selectRows[T](ctx, q.session(), query, args)
}

// One runs query and returns its first row as a T, which may be any type
// [Select] takes, a pointer to a struct included. No row is an error
// matching [ErrNotFound] and [sql.ErrNoRows].
func One[T any](ctx context.Context, q Querier, query string, args ...any) (T, error) {
	var v T
	if err := checkHelper[T]("One", ctx, q); err != nil {
		return v, err
	}
	err := q.Get(ctx, &v, query, args...)
	return v, err
}

// Iter runs query and yields its rows one at a time as T, without holding
// the result in memory. The rows are closed when the loop ends, breaks or
// returns. An error (from the query, a scan or the result stream) is yielded
// once with a zero T and ends the sequence.
//
//	for u, err := range dbm.Iter[User](ctx, m, "SELECT * FROM users") {
//		if err != nil {
//			return err
//		}
//		...
//	}
func Iter[T any](ctx context.Context, q Querier, query string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if err := checkHelper[T]("Iter", ctx, q); err != nil {
			yield(zero, err)
			return
		}
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			yield(zero, err)
			return
		}
		defer rows.Close()
		iterRows(rows, yield)
	}
}
