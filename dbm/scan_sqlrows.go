package dbm

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"sync"

	"github.com/dbmanager-go/dbmanager/dbm/internal/scan"
)

// sqlRowsScanner is the scanner of [ScanAll] and [ScanOne]: the default
// mapping (db tags, else lower-cased field names), strict about unknown
// columns. A manager's options do not reach rows it did not open.
var sqlRowsScanner = sync.OnceValue(func() *scan.Scanner { return newScanner(defaultOptions()) })

// ScanAll reads every row of rows into dest and closes rows. dest is what
// [Manager.ExecuteQuery] takes: a pointer to a []T or []*T for a struct T,
// to a []map[string]any, or to a []V for a scalar V with a one-column
// result; columns are mapped to fields the same way, and the same
// [*ScanError]s report an unknown column ([ErrUnknownColumn]), two columns
// for one field ([ErrDuplicateColumn]) or a NULL that does not fit
// ([ErrNullValue]). *dest is replaced (empty, not nil, with no rows; empty
// on error).
//
// It is for rows obtained elsewhere, such as from [sql.DB.QueryContext] or a
// library that hands out *sql.Rows. rows is closed in every case, also when
// dest is unusable, so that its connection goes back to its pool. Errors
// from the driver (reading or closing rows) come as an [*Error], classified
// as the manager classifies them. A nil rows (or a zero sql.Rows, which no
// query returned) or a bad dest is an [*ArgumentError] matching
// [ErrInvalidArgument].
func ScanAll(rows *sql.Rows, dest any) error {
	if unusableRows(rows) {
		return errNilRows("ScanAll")
	}
	s := sqlRowsScanner()
	d, err := s.Dest("ScanAll", dest)
	if err != nil {
		return closeRows(rows, scanErr(err))
	}
	_, err = s.All(rows, &d, false)
	if err = closeRows(rows, scanErr(err)); err != nil {
		d.Empty()
		return err
	}
	d.Done()
	return nil
}

// ScanOne reads the first row of rows into dest and closes rows, as
// [Manager.Get] does for a statement it runs: dest is a pointer to a struct
// (or to a pointer to one), a scalar or a map[string]any, mapped as in
// [ScanAll]. Rows after the first are not read. No row is an error matching
// [ErrNotFound] and [sql.ErrNoRows]. rows is closed in every case; bad
// arguments are an [*ArgumentError], as for ScanAll.
func ScanOne(rows *sql.Rows, dest any) error {
	if unusableRows(rows) {
		return errNilRows("ScanOne")
	}
	v, err := oneTarget("ScanOne", dest)
	if err != nil {
		return closeRows(rows, err)
	}
	switch {
	case rows.Next():
		err = scanErr(sqlRowsScanner().One(rows, nil, v, false))
	case rows.Err() == nil:
		err = sql.ErrNoRows
	}
	return closeRows(rows, err)
}

// unusableRows reports a nil *sql.Rows, or one that no query made (a zero
// sql.Rows, as new(sql.Rows) gives): database/sql panics when such rows
// are closed.
func unusableRows(rows *sql.Rows) bool {
	return rows == nil || reflect.ValueOf(rows).Elem().IsZero()
}

func errNilRows(fn string) error {
	return &ArgumentError{Func: fn, Arg: "rows", Reason: "nil *sql.Rows, or one no query returned (did the query fail?)"}
}

// closeRows closes rows after a read that ended with err, and returns the
// first error of the read, the rows and Close, classified. There is no
// deferred Close in the callers: a panic inside Scan (a user's sql.Scanner)
// leaves database/sql's rows lock held, and Close would block forever.
func closeRows(rows *sql.Rows, err error) error {
	if err == nil {
		err = rows.Err()
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}
	var se *ScanError
	var ae *ArgumentError
	if errors.As(err, &se) || errors.As(err, &ae) {
		return err
	}
	class, code := classify(context.Background(), err)
	return &Error{Class: class, Code: code, Op: "scan", Err: err}
}
