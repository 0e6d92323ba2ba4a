package dbm

import (
	"context"
	"database/sql"
	"iter"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
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
	pin  *Conn // the pinned connection ex belongs to, if any (see conn.go)
	// sentWrite: the statements are writes that autocommit sends (see
	// markSentWrite)
	sentWrite bool
}

// maxStatementLen bounds the statement text kept in errors and logs.
const maxStatementLen = redact.MaxStatementLen

func shorten(q string) string {
	if q == "" {
		return ""
	}
	return sqltext.Shorten(q, maxStatementLen)
}

// prepare checks the call and returns the statement as it is sent
// (trailing semicolons trimmed, '?' rebound for $n drivers), whether it
// only reads, and its cached plan hint.
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
	if strings.TrimSpace(st.sent) == "" {
		return stmtRef{}, &ArgumentError{Func: fn, Arg: "query", Reason: "empty statement"}
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
// hint) is judged from the caller's text, so that the texts of IN lists of
// every length do not fill the caches.
func (s session) prepareArgs(ctx context.Context, fn, query string, args []any) (stmtRef, []any, error) {
	st, err := s.prepare(ctx, fn, query)
	if err != nil {
		return stmtRef{}, nil, err
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
	m.stats.statements.Add(1)
	if err != nil {
		err = m.wrapMarked(ctx, st.op, st.query, err, st.marks)
	}
	if m.observed() {
		m.observe(ctx, st, rows, err)
	}
	return err
}

func (s session) executeQuery(ctx context.Context, dest any, query string, args []any) error {
	d, err := destOf("ExecuteQuery", dest)
	if err != nil {
		return err
	}
	err = s.run(ctx, "ExecuteQuery", query, args, func(rows *sql.Rows, hint *atomic.Pointer[plan]) (int, error) {
		app := d.appender()
		err := s.m.scanner.scanAll(ctx, rows, hint, d.fact.t, app.next)
		return d.hdr.len, err
	})
	if err != nil {
		d.hdr.len = 0
		return err
	}
	if d.hdr.data == nil {
		nonNil(reflect.ValueOf(dest).Elem())
	}
	return nil
}

// selectRows is [Select]: ExecuteQuery into a []T it makes itself, so the
// slice grows with a plain append instead of through reflect.
func selectRows[T any](ctx context.Context, s session, query string, args []any) ([]T, error) {
	t, err := elemTarget("Select", "T", reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	var out []T
	err = s.run(ctx, "Select", query, args, func(rows *sql.Rows, hint *atomic.Pointer[plan]) (int, error) {
		out = out[:0]
		err := s.m.scanner.scanAll(ctx, rows, hint, t, func() unsafe.Pointer {
			var zero T
			out = append(out, zero)
			return unsafe.Pointer(&out[len(out)-1])
		})
		return len(out), err
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
	return s.run(ctx, "Get", query, args, func(rows *sql.Rows, hint *atomic.Pointer[plan]) (int, error) {
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
		return 1, s.m.scanner.scanOne(ctx, rows, hint, nil, elem)
	})
}

// run prepares query, runs it, hands the rows to read, closes them and
// records the statement. read returns how many rows it stored; it gets the
// statement's plan hint for [scanner.planFor] (nil when there is none).
func (s session) run(ctx context.Context, fn, query string, args []any, read func(*sql.Rows, *atomic.Pointer[plan]) (int, error)) error {
	st, args, err := s.prepareArgs(ctx, fn, query, args)
	if err != nil {
		return err
	}
	return s.autocommit(ctx, "query", st, false, func(s session) error { return s.runOnce(ctx, st, args, read) })
}

// runOnce is one attempt of run.
func (s session) runOnce(ctx context.Context, q stmtRef, args []any, read func(*sql.Rows, *atomic.Pointer[plan]) (int, error)) error {
	st := s.newStmt(TraceQuery, q.sent)
	ctx = s.start(ctx, &st)
	rows, err := s.ex.QueryContext(ctx, q.sent, args...)
	if err != nil {
		return s.m.finish(ctx, &st, -1, err)
	}
	// No deferred Close: a panic inside rows.Scan (a user's sql.Scanner)
	// leaves database/sql's rows lock held, and Close would then block
	// forever; the connection is lost either way.
	n, err := read(rows, q.plan)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	st.marks |= markMidResult
	return s.m.finish(ctx, &st, n, err)
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
	r := s.m.leaks.trackRows(&Rows{rows: rows, m: s.m, ctx: ctx, query: q.sent, hint: q.plan, conn: own(ctx, s.conn), tx: s.tx})
	if s.pin != nil && s.tx == nil {
		s.pin.add(openOnConn{rows: r}) // Conn.Close closes them first
	}
	return r, nil
}

// target describes the slice that ExecuteQuery fills.
type target struct {
	slice reflect.Value // *dest, settable
	elem  reflect.Type  // the element type, or T for []*T
	ptrs  bool          // elements are *T
	maps  bool          // elements are map[string]any
}

var mapType = reflect.TypeFor[map[string]any]()

// sliceTarget validates an ExecuteQuery destination before anything runs.
func sliceTarget(fn string, dest any) (target, error) {
	if dest == nil {
		return target{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "nil; pass a pointer to a slice such as &users"}
	}
	v := reflect.ValueOf(dest)
	if v.Kind() != reflect.Pointer {
		return target{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "not a pointer (" + v.Type().String() + "); pass a pointer to a slice such as &users"}
	}
	if v.IsNil() {
		return target{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "nil pointer (" + v.Type().String() + ")"}
	}
	sv := v.Elem()
	if sv.Kind() != reflect.Slice {
		return target{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "points to " + sv.Type().String() + ", not a slice; use Get for one row"}
	}
	t, err := elemTarget(fn, "dest", sv.Type().Elem())
	t.slice = sv
	return t, err
}

// elemTarget describes a slice element type (arg names it in errors): a
// struct or scalar, a pointer to a struct, or a map.
func elemTarget(fn, arg string, elem reflect.Type) (target, error) {
	// Each case returns a literal: building a target field by field and
	// then copying it out stalls on the copy, which showed in benchmarks.
	switch elem.Kind() {
	case reflect.Struct:
		return target{elem: elem}, nil
	case reflect.Map:
		if typeKey(elem) == typeKey(mapType) {
			return target{elem: elem, maps: true}, nil
		}
	case reflect.Pointer:
		if e := elem.Elem(); e.Kind() == reflect.Struct && !isScalar(e) {
			return target{elem: e, ptrs: true}, nil
		}
	}
	if err := checkElem(fn, arg, elem); err != nil {
		return target{}, err
	}
	return target{elem: elem}, nil
}

// destFact is what ExecuteQuery works out once per destination type.
type destFact struct {
	typ  unsafe.Pointer // the type word of the *[]E destination
	t    target         // E as an element (t.slice unset)
	et   reflect.Type   // E
	size uintptr        // E's size
}

// destFacts remembers destination types, so that a call with a type seen
// before reaches its slice header without reflect. A slot is taken once,
// by the first type that lands there; others are worked out each time.
var destFacts [64]atomic.Pointer[destFact]

// destination is a checked ExecuteQuery destination.
type destination struct {
	dest any          // the *[]E the caller passed
	hdr  *sliceHeader // *dest
	fact *destFact
}

// destOf validates an ExecuteQuery destination before anything runs.
func destOf(fn string, dest any) (destination, error) {
	e := (*eface)(unsafe.Pointer(&dest))
	slot := &destFacts[(uintptr(e.typ)>>4^uintptr(e.typ)>>10)%uintptr(len(destFacts))]
	if f := slot.Load(); f != nil && f.typ == e.typ && e.data != nil {
		return destination{dest: dest, hdr: (*sliceHeader)(e.data), fact: f}, nil
	}
	t, err := sliceTarget(fn, dest)
	if err != nil {
		return destination{}, err
	}
	et := t.slice.Type().Elem()
	f := &destFact{typ: e.typ, t: target{elem: t.elem, ptrs: t.ptrs, maps: t.maps}, et: et, size: et.Size()}
	slot.CompareAndSwap(nil, f)
	return destination{dest: dest, hdr: (*sliceHeader)(unsafe.Pointer(t.slice.UnsafeAddr())), fact: f}, nil
}

// appender appends to an ExecuteQuery destination for scanAll, reusing
// its capacity.
type appender struct {
	d     *destination
	dirty int // elements below this may hold the caller's old values
}

// appender empties the destination (keeping its capacity) for an attempt.
func (d *destination) appender() appender {
	d.hdr.len = 0
	return appender{d: d, dirty: d.hdr.cap}
}

// next appends a zero element and returns its address. Elements that still
// hold the caller's values are zeroed first; memory past the old capacity
// comes zeroed.
func (a *appender) next() unsafe.Pointer {
	d := a.d
	n := d.hdr.len
	if n == d.hdr.cap {
		reflect.ValueOf(d.dest).Elem().Grow(1)
	}
	elem := unsafe.Add(d.hdr.data, uintptr(n)*d.fact.size)
	d.hdr.len = n + 1
	if n < a.dirty {
		reflect.NewAt(d.fact.et, elem).Elem().SetZero()
	}
	return elem
}

// oneTarget validates a Get or StructScan destination: a non-nil pointer.
func oneTarget(fn string, dest any) (reflect.Value, error) {
	if dest == nil {
		return reflect.Value{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "nil; pass a pointer such as &user"}
	}
	v := reflect.ValueOf(dest)
	if v.Kind() != reflect.Pointer {
		return reflect.Value{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "not a pointer (" + v.Type().String() + "); pass a pointer such as &user"}
	}
	if v.IsNil() {
		return reflect.Value{}, &ArgumentError{Func: fn, Arg: "dest", Reason: "nil pointer (" + v.Type().String() + ")"}
	}
	if err := checkElem(fn, "dest", v.Type().Elem()); err != nil {
		return reflect.Value{}, err
	}
	if err := checkOneRow(fn, "dest", v.Type().Elem()); err != nil {
		return reflect.Value{}, err
	}
	return v.Elem(), nil
}

// checkOneRow rejects a slice as the destination of one row (Get, One),
// the mistake of passing &users to Get: a slice of rows needs ExecuteQuery
// or Select. A slice one column can fill stays allowed: a []byte-kinded
// type (bytea, json.RawMessage) or one with a Scan method (pq.StringArray).
func checkOneRow(fn, arg string, t reflect.Type) error {
	if t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 || reflect.PointerTo(t).Implements(scannerType) {
		return nil
	}
	return &ArgumentError{Func: fn, Arg: arg, Reason: t.String() + " is a slice, and " + fn +
		" reads one row; for all rows use ExecuteQuery (dest *" + t.String() + ") or Select[" + t.Elem().String() + "]"}
}

// checkElem rejects element types that cannot receive a column; arg names
// where the type came from ("dest", or "T" of a generic helper).
func checkElem(fn, arg string, t reflect.Type) error {
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
		return &ArgumentError{Func: fn, Arg: arg, Reason: "unsupported element type " + t.String()}
	case reflect.Map:
		if t != mapType {
			return &ArgumentError{Func: fn, Arg: arg, Reason: "unsupported element type " + t.String() + " (maps must be map[string]any)"}
		}
	}
	return nil
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
	if err := checkElem(fn, "T", t); err != nil {
		return err
	}
	if fn == "One" {
		return checkOneRow(fn, "T", t)
	}
	return nil
}

// scanAll stores every row in the elements that next adds to the
// destination, one per row: elements are scanned in place, and each row's
// fields receive their columns directly, with no per-row copy. next
// returns the address of a new zero element (of t's element type as it
// sits in the slice: a *T for []*T, a map for []map[string]any).
func (s *scanner) scanAll(ctx context.Context, rows *sql.Rows, hint *atomic.Pointer[plan], t target, next func() unsafe.Pointer) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if t.maps {
		if err := checkMapColumns(cols); err != nil {
			return err
		}
		binary := binaryColumns(rows, cols)
		for rows.Next() {
			m, err := scanMap(rows, cols, binary)
			if err != nil {
				return err
			}
			*(*map[string]any)(next()) = m
		}
		return nil
	}
	p, err := s.planFor(hint, t.elem, cols, s.lenient(ctx))
	if err != nil {
		return err
	}
	var buf [16]any
	dst, rb := p.targets(buf[:])
	defer rb.release(p)
	c := p.newCursor()
	for rows.Next() {
		elem := next()
		if t.ptrs {
			pv := reflect.New(t.elem).UnsafePointer()
			*(*unsafe.Pointer)(elem) = pv
			elem = pv
		}
		if err := p.scanRow(rows, elem, dst, c); err != nil {
			return err
		}
	}
	return nil
}

// nonNil makes a nil slice empty: with no rows, *dest is empty, not nil.
// It runs last so that a result with rows allocates no empty slice first.
func nonNil(sl reflect.Value) {
	if sl.IsNil() {
		sl.Set(reflect.MakeSlice(sl.Type(), 0, 0))
	}
}

// scanOne scans the current row into v (addressable). cols may be nil.
func (s *scanner) scanOne(ctx context.Context, rows *sql.Rows, hint *atomic.Pointer[plan], cols []string, v reflect.Value) error {
	if cols == nil {
		var err error
		if cols, err = rows.Columns(); err != nil {
			return err
		}
	}
	if t := v.Type(); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && !isScalar(t.Elem()) {
		// *T for a struct T, as in One[*User]: the row fills a new T, as
		// ExecuteQuery does for []*T.
		pv := reflect.New(t.Elem())
		if err := s.scanOne(ctx, rows, hint, cols, pv.Elem()); err != nil {
			return err
		}
		v.Set(pv)
		return nil
	}
	if v.Type() == mapType {
		if err := checkMapColumns(cols); err != nil {
			return err
		}
		m, err := scanMap(rows, cols, binaryColumns(rows, cols))
		if err == nil {
			v.Set(reflect.ValueOf(m))
		}
		return err
	}
	p, err := s.planFor(hint, v.Type(), cols, s.lenient(ctx))
	if err != nil {
		return err
	}
	v.SetZero()
	var buf [16]any
	dst, rb := p.targets(buf[:])
	err = p.scanRow(rows, unsafe.Pointer(v.UnsafeAddr()), dst, p.newCursor())
	rb.release(p)
	return err
}

// scanMap reads one row as column name -> value. Drivers that return text
// as []byte (MySQL, some SQLite types) get strings, except for binary
// columns, which stay []byte.
func scanMap(rows *sql.Rows, cols []string, binary []bool) (map[string]any, error) {
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(cols))
	for i, c := range cols {
		v := raw[i]
		if b, ok := v.([]byte); ok && !binary[i] {
			v = string(b)
		}
		m[c] = v
	}
	return m, nil
}

// binaryColumns marks the columns whose database type holds bytes, not text.
func binaryColumns(rows *sql.Rows, cols []string) []bool {
	binary := make([]bool, len(cols))
	types, err := rows.ColumnTypes()
	if err != nil {
		return binary
	}
	for i, ct := range types {
		name := strings.ToUpper(ct.DatabaseTypeName())
		binary[i] = name == "BYTEA" || strings.Contains(name, "BLOB") || strings.Contains(name, "BINARY")
	}
	return binary
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
