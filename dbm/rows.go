package dbm

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"sync/atomic"
)

// Rows is the result of [Manager.Query] or [Tx.Query]: database/sql's rows
// with errors classified and struct scanning added. The caller must Close it
// (Close is idempotent and safe to defer) and check Err after the loop:
//
//	rows, err := m.Query(ctx, "SELECT id, name FROM users")
//	if err != nil {
//		return err
//	}
//	defer rows.Close()
//	for rows.Next() {
//		var u User
//		if err := rows.StructScan(&u); err != nil {
//			return err
//		}
//	}
//	return rows.Err()
type Rows struct {
	rows  *sql.Rows
	m     *Manager
	ctx   context.Context
	query string
	cols  []string // cached by the first StructScan
	leak  atomic.Pointer[leakNode]
	conn  *ownedConn // the connection of a statement run on one of its own; see ownconn.go
	// scanPanicked is set, for good, when a scan of these rows panicked (a
	// user's sql.Scanner): database/sql then keeps its rows lock forever,
	// so Close must not wait for it. Set by a deferred check around each
	// scan, which lets the panic go on unchanged.
	scanPanicked atomic.Bool
	err          error       // Err's classified error, once there is one
	tx           *Tx         // the transaction the rows were read in, if any
	closed       atomic.Bool // Close was called
}

// Next prepares the next row for Scan or StructScan and reports whether
// there is one. When it returns false, check [Rows.Err].
func (r *Rows) Next() bool {
	if r == nil || r.rows == nil {
		return false
	}
	if r.rows.Next() {
		return true
	}
	if r.conn != nil {
		r.releaseIfDone()
	}
	return false
}

// NextResultSet moves to the next result set of a multi-statement query.
func (r *Rows) NextResultSet() bool {
	if r == nil || r.rows == nil {
		return false
	}
	r.cols = nil
	return r.rows.NextResultSet()
}

// Scan copies the current row's columns into dest, as [sql.Rows.Scan] does.
func (r *Rows) Scan(dest ...any) error {
	if err := r.usable("Scan"); err != nil {
		return err
	}
	done := false
	defer r.notePanic(&done)
	err := r.rows.Scan(dest...)
	done = true
	if err != nil {
		return r.fail("scan", err)
	}
	return nil
}

// StructScan copies the current row into dest, a pointer to a struct
// (columns matched to fields as in [Manager.ExecuteQuery]), to a scalar for
// a one-column result, or to a map[string]any.
func (r *Rows) StructScan(dest any) error {
	if err := r.usable("StructScan"); err != nil {
		return err
	}
	v, err := oneTarget("StructScan", dest)
	if err != nil {
		return err
	}
	return r.scanInto(v)
}

func (r *Rows) scanInto(v reflect.Value) error {
	if r.cols == nil {
		cols, err := r.rows.Columns()
		if err != nil {
			return r.fail("scan", err)
		}
		r.cols = cols
	}
	done := false
	defer r.notePanic(&done)
	err := r.m.scanRow(r.ctx, r.rows, r.cols, v)
	done = true
	if err != nil {
		return r.fail("scan", err)
	}
	return nil
}

// Columns returns the result's column names.
func (r *Rows) Columns() ([]string, error) {
	if err := r.usable("Columns"); err != nil {
		return nil, err
	}
	cols, err := r.rows.Columns()
	return cols, r.fail("scan", err)
}

// ColumnTypes returns the result's column types.
func (r *Rows) ColumnTypes() ([]*sql.ColumnType, error) {
	if err := r.usable("ColumnTypes"); err != nil {
		return nil, err
	}
	ct, err := r.rows.ColumnTypes()
	return ct, r.fail("scan", err)
}

// Err returns the error that ended the iteration, if any, classified.
func (r *Rows) Err() error {
	if err := r.usable("Err"); err != nil {
		return err
	}
	if r.err == nil {
		if err := r.rows.Err(); err != nil {
			if r.txEnded() && errors.Is(err, context.Canceled) {
				// database/sql ends the rows of a transaction that ends
				// with the transaction's context error: not the caller's.
				r.err = r.m.newError(ClassClosed, "", "query", r.query, &rowsClosedError{errTxEndedUnderRows, err})
			} else {
				r.err = r.m.wrap(r.ctx, "query", r.query, err) // counted once, however often Err is called
			}
		}
	}
	return r.err
}

// Close releases the rows and their connection. It is idempotent.
func (r *Rows) Close() error {
	if err := r.usable("Close"); err != nil {
		return err
	}
	r.closed.Store(true)
	if r.scanPanicked.Load() {
		// A Scanner panicked mid-scan (see scanPanicked): database/sql holds
		// the rows' lock, so closing would block forever and the connection
		// cannot be given back. Stop tracking the rows and say so.
		r.m.rowsClosed(r)
		return r.m.newError(ClassConnection, "", "close", r.query, errScanPanicked)
	}
	err := r.rows.Close()
	r.conn.release()
	r.m.rowsClosed(r)
	return r.m.wrap(r.ctx, "close", r.query, err)
}

// usable rejects a nil *Rows (the caller ignored Query's error) and one not
// made by Query.
func (r *Rows) usable(fn string) error {
	if r == nil || r.rows == nil {
		return &ArgumentError{Func: fn, Arg: "receiver", Reason: "nil *dbm.Rows (did Query fail?); get rows from Query"}
	}
	return nil
}

// fail classifies an error from reading the rows. Rows that are closed (by
// Close, at the end of the result, or because their transaction ended)
// make database/sql fail with "sql: Rows are closed" or with the error that
// closed them; the caller then gets an error matching [ErrClosed] that says
// why, with database/sql's error kept as its cause.
func (r *Rows) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var why error
	switch {
	case r.closed.Load():
		why = errRowsClosed
	case r.txEnded():
		why = errTxEndedUnderRows
	case r.ctx.Err() == nil && r.ended():
		why = errRowsEnded
	default:
		return r.m.wrap(r.ctx, op, r.query, err)
	}
	return r.m.newError(ClassClosed, "", op, r.query, &rowsClosedError{why, err})
}

// txEnded reports whether the rows were read in a transaction that has been
// committed or rolled back while the caller's context is still live.
func (r *Rows) txEnded() bool {
	return r.tx != nil && r.tx.done.Load() && r.ctx.Err() == nil
}

// ended reports whether database/sql has closed the rows.
func (r *Rows) ended() bool {
	_, err := r.rows.Columns() // fails only on closed rows
	return err != nil
}

// Why rows could not be read: the causes of their [ErrClosed] errors.
var (
	errRowsClosed       = errors.New("rows are closed: Close was called")
	errRowsEnded        = errors.New("rows are closed: Next returned false (the result ended or failed; see Err)")
	errTxEndedUnderRows = errors.New("rows are closed: their transaction ended (Commit or Rollback) while the rows were open")
)

// rowsClosedError says why rows are closed and keeps database/sql's error.
type rowsClosedError struct{ why, err error }

func (e *rowsClosedError) Error() string   { return e.why.Error() + ": " + e.err.Error() }
func (e *rowsClosedError) Unwrap() []error { return []error{e.why, e.err} }

// releaseIfDone gives the rows' own connection back once database/sql has
// closed them at the end of the result, as it gives a pool connection back
// then; rows with another result set to come keep it until Close.
func (r *Rows) releaseIfDone() {
	if _, err := r.rows.Columns(); err != nil { // "sql: Rows are closed"
		r.conn.release()
	}
}

// errScanPanicked is the cause Close reports for rows whose scan panicked.
var errScanPanicked = errors.New("a Scan panicked while database/sql held the rows' lock: the rows cannot be closed and their connection is lost")

// notePanic, deferred around a scan, marks the rows when the scan did not
// finish (it panicked).
func (r *Rows) notePanic(done *bool) {
	if !*done {
		r.scanPanicked.Store(true)
	}
}
