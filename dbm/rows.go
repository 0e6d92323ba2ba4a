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
	hint  *atomic.Pointer[plan] // the statement's plan hint, or nil
	cols  []string              // cached by the first StructScan
	leak  atomic.Pointer[leakNode]
	conn  *ownedConn // the connection of a statement run on one of its own; see ownconn.go
	// scanPanicked is set, for good, when a scan of these rows panicked (a
	// user's sql.Scanner): database/sql then keeps its rows lock forever,
	// so Close must not wait for it. Set by a deferred check around each
	// scan, which lets the panic go on unchanged.
	scanPanicked atomic.Bool
	err          error // Err's classified error, once there is one
}

// Next prepares the next row for Scan or StructScan and reports whether
// there is one. When it returns false, check [Rows.Err].
func (r *Rows) Next() bool {
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
	r.cols = nil
	return r.rows.NextResultSet()
}

// Scan copies the current row's columns into dest, as [sql.Rows.Scan] does.
func (r *Rows) Scan(dest ...any) error {
	done := false
	defer r.notePanic(&done)
	err := r.rows.Scan(dest...)
	done = true
	if err != nil {
		return r.m.wrap(r.ctx, "scan", r.query, err)
	}
	return nil
}

// StructScan copies the current row into dest, a pointer to a struct
// (columns matched to fields as in [Manager.ExecuteQuery]), to a scalar for
// a one-column result, or to a map[string]any.
func (r *Rows) StructScan(dest any) error {
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
			return r.m.wrap(r.ctx, "scan", r.query, err)
		}
		r.cols = cols
	}
	done := false
	defer r.notePanic(&done)
	err := r.m.scanner.scanOne(r.ctx, r.rows, r.hint, r.cols, v)
	done = true
	if err != nil {
		return r.m.wrap(r.ctx, "scan", r.query, err)
	}
	return nil
}

// Columns returns the result's column names.
func (r *Rows) Columns() ([]string, error) {
	cols, err := r.rows.Columns()
	return cols, r.m.wrap(r.ctx, "scan", r.query, err)
}

// ColumnTypes returns the result's column types.
func (r *Rows) ColumnTypes() ([]*sql.ColumnType, error) {
	ct, err := r.rows.ColumnTypes()
	return ct, r.m.wrap(r.ctx, "scan", r.query, err)
}

// Err returns the error that ended the iteration, if any, classified.
func (r *Rows) Err() error {
	if r.err == nil {
		if err := r.rows.Err(); err != nil {
			r.err = r.m.wrap(r.ctx, "query", r.query, err) // counted once, however often Err is called
		}
	}
	return r.err
}

// Close releases the rows and their connection. It is idempotent.
func (r *Rows) Close() error {
	if r.scanPanicked.Load() {
		// A Scanner panicked mid-scan (see scanPanicked): database/sql holds
		// the rows' lock, so closing would block forever and the connection
		// cannot be given back. Stop tracking the rows and say so.
		r.m.leaks.releaseRows(r)
		return r.m.newError(ClassConnection, "", "close", r.query, errScanPanicked)
	}
	err := r.rows.Close()
	r.conn.release()
	r.m.leaks.releaseRows(r)
	return r.m.wrap(r.ctx, "close", r.query, err)
}

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
