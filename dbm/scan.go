package dbm

import (
	"context"
	"database/sql"
	"reflect"

	"github.com/dbmanager-go/dbmanager/dbm/internal/scan"
)

// The scanner itself lives in internal/scan; this file connects it to the
// manager: its settings, the per-call IgnoreUnknownColumns, and its errors
// turned into this package's.

// newScanner returns the scanner of a manager made with o.
func newScanner(o options) *scan.Scanner {
	return scan.New(scan.Config{NameMapper: o.nameMapper, IgnoreUnknown: o.ignoreUnknown})
}

type ignoreUnknownKey struct{}

// IgnoreUnknownColumns returns a context under which the calls that scan
// rows ([Manager.ExecuteQuery], [Manager.Get], [Select], [One], [Iter],
// [Rows.StructScan]) skip result columns that have no destination field
// instead of failing with [ErrUnknownColumn]. Use it for one call; use
// [WithIgnoreUnknownColumns] for every call of a manager. A nil ctx is
// returned as it is, and the call that gets it fails with
// [ErrInvalidArgument].
func IgnoreUnknownColumns(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return context.WithValue(ctx, ignoreUnknownKey{}, true)
}

// lenient reports whether ctx asks this call to skip unknown columns (the
// manager's own setting is the scanner's).
func lenient(ctx context.Context) bool {
	return ctx != nil && ctx.Value(ignoreUnknownKey{}) != nil
}

// scanErr turns the scanner's errors into this package's: a [*ScanError]
// or an [*ArgumentError]. Other errors (the driver's) pass unchanged.
func scanErr(err error) error {
	switch e := err.(type) {
	case nil:
		return nil
	case *scan.Error:
		return &ScanError{Column: e.Column, Index: e.Index, Dest: e.Dest, Err: e.Err, Other: e.Other,
			unexported: e.Unexported, otherColumn: e.OtherColumn}
	case *scan.ArgError:
		return &ArgumentError{Func: e.Func, Arg: e.Arg, Reason: e.Reason}
	}
	return err
}

// scanRow reads the current row of rows (whose columns are cols) into v,
// for [Rows.StructScan].
func (m *Manager) scanRow(ctx context.Context, rows scan.Rows, cols []string, v reflect.Value) error {
	return scanErr(m.scanner.One(rows, cols, v, lenient(ctx)))
}

// oneTarget validates a Get or StructScan destination: a non-nil pointer.
func oneTarget(fn string, dest any) (reflect.Value, error) {
	v, err := scan.OneTarget(fn, dest)
	return v, scanErr(err)
}

// iterRows yields every row of r as a T for [Iter].
func iterRows[T any](r *Rows, yield func(T, error) bool) {
	var zero T
	ir := &iterReader{r: r}
	// inScan is true only while a row is scanned: a panic then comes from
	// a Scanner (not from the caller's loop body) and marks the rows.
	defer func() {
		if ir.inScan {
			r.scanPanicked.Store(true)
		}
	}()
	stopped, err := scan.Each(r.m.scanner, ir, lenient(r.ctx), func(v T) bool {
		ir.inScan = false
		return yield(v, nil)
	})
	ir.inScan = false
	switch {
	case err != nil:
		yield(zero, r.m.wrap(r.ctx, "scan", r.query, scanErr(err)))
	case stopped:
	default:
		if err := r.Err(); err != nil {
			yield(zero, err)
		}
	}
}

// iterReader reads r for [scan.Each]: Next is the Rows' own (which gives a
// connection of its own back at the end), and inScan is set from a Next
// that found a row until the row is yielded, which covers the scan of the
// row (a Scanner may be called inside database/sql's Scan or after it, by
// the fast path).
type iterReader struct {
	r      *Rows
	inScan bool
}

func (ir *iterReader) Columns() ([]string, error)              { return ir.r.rows.Columns() }
func (ir *iterReader) ColumnTypes() ([]*sql.ColumnType, error) { return ir.r.rows.ColumnTypes() }
func (ir *iterReader) Scan(dest ...any) error                  { return ir.r.rows.Scan(dest...) }

func (ir *iterReader) Next() bool {
	ir.inScan = false
	ok := ir.r.Next()
	ir.inScan = ok
	return ok
}
