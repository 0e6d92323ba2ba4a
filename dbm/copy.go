package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/dbmanager-go/dbmanager/dbm/internal/copyhook"
)

// CopyRows returns rows as the sequence [Tx.CopyFrom] takes.
func CopyRows(rows [][]any) iter.Seq2[[]any, error] {
	return func(yield func([]any, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// CopyFrom loads rows into table, one value per column of columns in each
// row, inside the transaction, and returns how many rows it loaded. It is
// the fast way to insert many rows:
//
//   - PostgreSQL with lib/pq ("postgres"): COPY ... FROM STDIN;
//   - PostgreSQL with pgx: pgx's binary COPY, when the program imports
//     package dbm/dbmpgx (see there); otherwise multi-row INSERTs;
//   - MySQL/MariaDB and SQLite: multi-row INSERTs, each under the server's
//     limit on placeholders in a statement (65535 for MySQL and
//     PostgreSQL, 32766 for SQLite; CopyFrom aims for 4096 on MySQL and
//     1024 on SQLite, which load faster) and, on MySQL, under half its
//     max_allowed_packet, the full-size one prepared once and run for
//     every full chunk.
//
// rows is read once, in order; [CopyRows] makes one from a [][]any, and a
// function can stream them (from a file, another query) without holding
// them all. A value is anything the driver takes as an argument (nil is
// NULL). A source may reuse one []any for every row (CopyFrom copies the
// values out of it), but not change what a value refers to, such as the
// bytes of a []byte, until CopyFrom returns: a batched INSERT sends them
// later. An error yielded by rows stops
// the load and is returned, wrapped (errors.Is finds it), with the row's
// index.
//
// table is "name" or "schema.name"; each part and each column is quoted as
// given (on PostgreSQL, write unquoted names as the server folds them: in
// lower case). An empty table, no column, an empty or duplicate column, a
// nil rows and a row whose length differs from len(columns) (the error
// names its index, from 0) are errors matching [ErrInvalidArgument].
//
// CopyFrom is all or nothing within the transaction: it sets a savepoint
// first and, on any error, rolls back to it, so that the transaction holds
// none of the rows and can go on (even on PostgreSQL, where the failure
// would otherwise abort it). Like every statement in a transaction, it is
// not retried.
func (tx *Tx) CopyFrom(ctx context.Context, table string, columns []string, rows iter.Seq2[[]any, error]) (int64, error) {
	const fn = "CopyFrom"
	if err := tx.usable(fn); err != nil {
		return 0, err
	}
	m := tx.s.m
	if err := m.check(ctx, fn); err != nil {
		return 0, err
	}
	tx.wrote.Store(true) // see commitcheck.go
	parts, err := checkTable(fn, table)
	if err != nil {
		return 0, err
	}
	if err := checkColumns(fn, columns); err != nil {
		return 0, err
	}
	if rows == nil {
		return 0, &ArgumentError{Func: fn, Arg: "rows", Reason: "nil sequence; use dbm.CopyRows(rows) for a [][]any"}
	}
	if tx.done.Load() {
		return 0, m.newError(ClassClosed, "", "copy", "", sql.ErrTxDone)
	}
	const sp = "SAVEPOINT dbm_copy"
	if _, err := tx.s.exec(ctx, sp, nil); err != nil {
		return 0, err
	}
	src := &copySource{fn: fn, rows: rows, ncols: len(columns)}
	n, err := tx.copyRows(ctx, parts, columns, src)
	if src.stopped != nil {
		err = src.stopped
	}
	if err != nil {
		if _, rbErr := tx.s.exec(ctx, "ROLLBACK TO "+sp, nil); rbErr != nil {
			return 0, fmt.Errorf("%w (and rolling back to the savepoint before the load failed: %w)", err, rbErr)
		}
		_, _ = tx.s.exec(ctx, "RELEASE "+sp, nil)
		return 0, err
	}
	if _, err := tx.s.exec(ctx, "RELEASE "+sp, nil); err != nil {
		return 0, err
	}
	return n, nil
}

// copySource is CopyFrom's rows with the checks each row gets.
type copySource struct {
	fn      string
	rows    iter.Seq2[[]any, error]
	ncols   int
	index   int   // rows accepted so far
	stopped error // why accept stopped the load: pgx reports it inside a server error
}

// accept checks a row the source yielded (with its error): nil, or why
// the load stops (also kept in s.stopped).
func (s *copySource) accept(row []any, err error) error {
	switch {
	case err != nil:
		s.stopped = &sourceError{index: s.index, err: err}
	case len(row) != s.ncols:
		s.stopped = &ArgumentError{Func: s.fn, Arg: "rows", Reason: "row " + strconv.Itoa(s.index) + " has " +
			strconv.Itoa(len(row)) + " values, want " + strconv.Itoa(s.ncols) + " (one per column)"}
	default:
		s.index++
		return nil
	}
	return s.stopped
}

// pull returns the rows one at a time, for COPY, which asks for them (a
// coroutine switch per row, which the multi-row INSERTs do without: they
// range over the rows). stop must be called; the rows are not read before
// the first call of next.
func (s *copySource) pull() (next func() ([]any, bool, error), stop func()) {
	p, stop := iter.Pull2(s.rows)
	return func() ([]any, bool, error) {
		row, err, ok := p()
		if !ok {
			return nil, false, nil
		}
		if err := s.accept(row, err); err != nil {
			return nil, false, err
		}
		return row, true, nil
	}, stop
}

// copyRows loads the rows of src in the driver's fastest way.
func (tx *Tx) copyRows(ctx context.Context, table, columns []string, src *copySource) (int64, error) {
	m := tx.s.m
	switch m.driver {
	case DriverPostgres:
		next, stop := src.pull()
		defer stop()
		return tx.copyIn(ctx, table, columns, next)
	case DriverPgx:
		if conn := tx.sqlConn(); conn != nil && copyhook.Pgx != nil {
			handled := true
			q := "COPY " + qualified(m.driver, table) + " (" + quoteList(m.driver, columns) + ") FROM STDIN BINARY"
			next, stop := src.pull()
			n, err := tx.observed(ctx, q, func(ctx context.Context) (n int64, err error) {
				n, handled, err = copyPgx(ctx, conn, table, columns, next)
				return n, err
			})
			stop() // not handled: no row was read
			if handled {
				return n, err
			}
		}
		return tx.insertChunks(ctx, table, columns, src, 65535, 65535)
	case DriverSQLite:
		return tx.insertChunks(ctx, table, columns, src, 32766, sqliteChunkParams)
	}
	return tx.insertChunks(ctx, table, columns, src, 65535, mysqlChunkParams)
}

// The placeholders per multi-row INSERT that CopyFrom aims for, below the
// server's limit, chosen by measurement (see docs/benchmarks.md, CopyFrom;
// 100,000 rows of four columns): on SQLite 1024 took 18% less CPU time than
// the limit, 32766; on MariaDB 4096 took 40% less than the limit, 65535,
// and a third less than 1024 (whose statements are more round trips).
const (
	sqliteChunkParams = 1024
	mysqlChunkParams  = 4096
)

// sqlConn is the connection the transaction runs on, when it has one of
// its own or runs on a [Conn]: pgx's COPY needs it.
func (tx *Tx) sqlConn() *sql.Conn {
	if tx.conn != nil {
		return tx.conn.conn
	}
	if tx.s.pin != nil {
		return tx.s.pin.own.conn
	}
	return nil
}

// copyPgx runs package dbmpgx's COPY on conn's pgx connection.
func copyPgx(ctx context.Context, conn *sql.Conn, table, columns []string, next func() ([]any, bool, error)) (n int64, handled bool, err error) {
	rawErr := conn.Raw(func(dc any) error {
		for {
			u, ok := dc.(interface{ Unwrap() driver.Conn })
			if !ok {
				break
			}
			dc = u.Unwrap()
		}
		// The error stays out of Raw: database/sql would close the
		// connection on driver.ErrBadConn, which waits for the
		// transaction on it to end, and so for this call.
		n, handled, err = copyhook.Pgx(ctx, dc, table, columns, next)
		return nil
	})
	if rawErr != nil {
		return 0, true, rawErr
	}
	return n, handled, err
}

// copyIn is COPY FROM STDIN with lib/pq: a prepared COPY statement takes one
// row per Exec, buffered by the driver, and an Exec without arguments ends it.
func (tx *Tx) copyIn(ctx context.Context, table, columns []string, next func() ([]any, bool, error)) (int64, error) {
	m := tx.s.m
	q := "COPY " + qualified(m.driver, table) + " (" + quoteList(m.driver, columns) + ") FROM STDIN"
	return tx.observed(ctx, q, func(sctx context.Context) (n int64, err error) {
		stmt, err := tx.tx.PrepareContext(sctx, q)
		if err != nil {
			return 0, err
		}
		defer func() {
			if cerr := stmt.Close(); err == nil {
				err = cerr
			}
		}()
		for {
			row, ok, err := next()
			if err != nil {
				return n, err
			}
			if !ok {
				break
			}
			if _, err := stmt.ExecContext(sctx, row...); err != nil {
				return n, err
			}
			n++
		}
		_, err = stmt.ExecContext(sctx)
		return n, err
	})
}

// observed runs one COPY statement q (run) as the manager runs a statement:
// counted, traced, logged when slow, its error classified, except an error
// of CopyFrom's own checks or of the caller's rows, returned as it is.
func (tx *Tx) observed(ctx context.Context, q string, run func(ctx context.Context) (int64, error)) (int64, error) {
	st := tx.s.newStmt(TraceExec, q)
	sctx := tx.s.start(ctx, &st)
	n, err := run(sctx)
	if err != nil && !isArgOrSource(err) {
		return n, tx.s.m.finish(sctx, &st, int(n), err)
	}
	_ = tx.s.m.finish(sctx, &st, int(n), nil)
	return n, err
}

// insertChunks loads the rows with multi-row INSERT statements of at most
// limit placeholders each, aiming for chunk (and, on MySQL, at most half
// the server's max_allowed_packet of values). The full-size statement is
// prepared once and run for every full chunk; only the last, shorter one
// is a statement of its own.
func (tx *Tx) insertChunks(ctx context.Context, table, columns []string, src *copySource, limit, chunk int) (int64, error) {
	m := tx.s.m
	ncols := len(columns)
	per := max(min(chunk, limit)/ncols, 1)
	maxBytes := 0 // 0: no byte limit
	if m.driver == DriverMySQL {
		var packet int64
		if err := tx.tx.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
			return 0, m.wrap(ctx, "copy", "SELECT @@max_allowed_packet", err)
		}
		maxBytes = int(packet / 2)
	}
	prefix := "INSERT INTO " + qualified(m.driver, table) + " (" + quoteList(m.driver, columns) + ") VALUES "
	numbered := m.driver == DriverPgx || m.driver == DriverPostgres
	var full *sql.Stmt
	var fullQuery string // the full-size statement's text, built once
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	buf := make([]any, 0, min(per, 4096)*ncols)
	size, n := 0, int64(0)
	flush := func() error {
		k := len(buf) / ncols
		if k == 0 {
			return nil
		}
		var q string
		switch {
		case k < per:
			q = prefix + valuesList(k, ncols, numbered)
		case fullQuery == "":
			fullQuery = prefix + valuesList(k, ncols, numbered)
			fallthrough
		default:
			q = fullQuery
		}
		st := tx.s.newStmt(TraceExec, q)
		sctx := tx.s.start(ctx, &st)
		var err error
		if k == per {
			if full == nil {
				full, err = tx.tx.PrepareContext(sctx, q)
			}
			if err == nil {
				_, err = full.ExecContext(sctx, buf...)
			}
		} else {
			_, err = tx.tx.ExecContext(sctx, q, buf...)
		}
		if err = m.finish(sctx, &st, k, err); err != nil {
			return err
		}
		n += int64(k)
		clear(buf)
		buf, size = buf[:0], 0
		return nil
	}
	for row, err := range src.rows {
		if err := src.accept(row, err); err != nil {
			return n, err
		}
		if maxBytes > 0 {
			rs := rowSize(row)
			if len(buf) > 0 && size+rs > maxBytes {
				if err := flush(); err != nil {
					return n, err
				}
			}
			size += rs
		}
		buf = append(buf, row...)
		if len(buf) >= per*ncols {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// rowSize estimates the bytes a row's values take in a statement.
func rowSize(row []any) int {
	s := 0
	for _, v := range row {
		switch v := v.(type) {
		case string:
			s += len(v)
		case []byte:
			s += len(v)
		}
		s += 16
	}
	return s
}

// valuesList is "(?, ?), (?, ?)" for k rows of ncols values, or with $1,
// $2, ... when numbered.
func valuesList(k, ncols int, numbered bool) string {
	var b strings.Builder
	b.Grow(k * ncols * 4)
	p := 1
	for r := range k {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range ncols {
			if c > 0 {
				b.WriteByte(',')
			}
			if numbered {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
				p++
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// sourceError is the error the caller's rows yielded; errors.Is and As
// reach it.
type sourceError struct {
	index int
	err   error
}

func (e *sourceError) Error() string {
	return "dbm: CopyFrom: rows yielded an error at row " + strconv.Itoa(e.index) + ": " + e.err.Error()
}
func (e *sourceError) Unwrap() error { return e.err }

// isArgOrSource reports an error that CopyFrom's own checks or the caller's
// rows produced, which is returned as it is rather than classified.
func isArgOrSource(err error) bool {
	var a *ArgumentError
	var s *sourceError
	return errors.As(err, &a) || errors.As(err, &s)
}

// qualified quotes "name" or "schema"."name".
func qualified(driver string, parts []string) string {
	return quoteList(driver, parts, ".")
}

// quoteList quotes each name and joins them with sep (", " by default).
func quoteList(driver string, names []string, sep ...string) string {
	j := ", "
	if len(sep) > 0 {
		j = sep[0]
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(driver, n)
	}
	return strings.Join(q, j)
}

// checkTable splits "name" or "schema.name" and checks each part.
func checkTable(fn, table string) ([]string, error) {
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return nil, &ArgumentError{Func: fn, Arg: "table", Reason: quoteShort(table) + " has more than one dot (want name or schema.name)"}
	}
	for _, p := range parts {
		if err := checkName(fn, "table", p); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// checkColumns checks that there is at least one column, each a name, none
// twice.
func checkColumns(fn string, columns []string) error {
	if len(columns) == 0 {
		return &ArgumentError{Func: fn, Arg: "columns", Reason: "no column"}
	}
	seen := make(map[string]int, len(columns))
	for i, c := range columns {
		if err := checkName(fn, "columns["+strconv.Itoa(i)+"]", c); err != nil {
			return err
		}
		if j, dup := seen[c]; dup {
			return &ArgumentError{Func: fn, Arg: "columns", Reason: quoteShort(c) + " given twice (at " + strconv.Itoa(j) + " and " + strconv.Itoa(i) + ")"}
		}
		seen[c] = i
	}
	return nil
}

// checkName accepts a name that quoting can carry: not empty, no NUL, at
// most 64 bytes (MySQL's limit; PostgreSQL truncates past 63).
func checkName(fn, arg, name string) error {
	switch {
	case name == "":
		return &ArgumentError{Func: fn, Arg: arg, Reason: "empty name"}
	case len(name) > 64:
		return &ArgumentError{Func: fn, Arg: arg, Reason: quoteShort(name) + " is longer than 64 bytes"}
	case strings.ContainsRune(name, 0):
		return &ArgumentError{Func: fn, Arg: arg, Reason: "name contains a NUL byte"}
	}
	return nil
}
