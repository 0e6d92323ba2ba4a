package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type fuzzInner struct {
	N int64   `db:"n"`
	S *string `db:"s"`
}

type fuzzBase struct {
	B bool `db:"b"`
}

type fuzzDest struct {
	fuzzBase
	I  int64          `db:"i"`
	S  string         `db:"s"`
	P  *int64         `db:"p"`
	F  float64        `db:"f"`
	NS sql.NullString `db:"ns"`
	T  time.Time      `db:"t"`
	In *fuzzInner     `db:"in"`
}

// fuzzCols are the columns the fuzzer picks from; "zz" has no field.
var fuzzCols = []string{"b", "i", "s", "p", "f", "ns", "t", "in.n", "in.s", "zz"}

// fuzzValue returns the value of a column: kind 0 is NULL, 1 a value of the
// field's type, 2 the text "x" (valid only for string fields).
func fuzzValue(col string, kind byte, v int64) driver.Value {
	switch kind % 3 {
	case 0:
		return nil
	case 2:
		return "x"
	}
	switch col {
	case "b":
		return v%2 == 0
	case "i", "p", "in.n":
		return v
	case "f":
		return float64(v) / 2
	case "t":
		return time.Unix(v%1e10, 0).UTC()
	default:
		return "s" + strconv.FormatInt(v, 10)
	}
}

// FuzzScanColumns feeds random column sets, NULLs and mismatched values into
// a struct with embedded, pointer, nullable and nested fields. Every result
// is either an error of the documented types, or exactly the values sent.
func FuzzScanColumns(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 2, 1, 3, 1, 4, 1, 5, 1, 6, 1, 7, 1, 8, 1}, false, int64(42))
	f.Add([]byte{1, 1, 7, 0, 8, 0}, false, int64(-3)) // inner all NULL: stays nil
	f.Add([]byte{1, 1, 7, 0, 8, 1}, false, int64(5))  // inner allocated, NULL n is an error
	f.Add([]byte{1, 0}, false, int64(1))              // NULL into int64
	f.Add([]byte{3, 2, 5, 2, 2, 2}, false, int64(0))  // "x" into *int64 fails
	f.Add([]byte{9, 1, 1, 1}, false, int64(9))        // unknown column
	f.Add([]byte{9, 1, 1, 1}, true, int64(9))         // ignored when lenient
	f.Add([]byte{}, false, int64(0))                  // no columns
	f.Fuzz(func(t *testing.T, data []byte, lenient bool, v int64) {
		var cols []string
		var vals []driver.Value
		seen := map[string]bool{}
		for i := 0; i+1 < len(data) && len(cols) < 12; i += 2 {
			col := fuzzCols[int(data[i])%len(fuzzCols)]
			if seen[col] {
				continue
			}
			seen[col] = true
			cols = append(cols, col)
			vals = append(vals, fuzzValue(col, data[i+1], v))
		}
		db, mock, err := sqlmock.New()
		if err != nil {
			t.Fatal(err)
		}
		m, err := dbm.Wrap(db, "sqlmock")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		rows := sqlmock.NewRows(cols)
		if len(cols) > 0 {
			rows.AddRow(vals...)
		}
		mock.ExpectQuery("SELECT").WillReturnRows(rows)
		ctx := context.Background()
		if lenient {
			ctx = dbm.IgnoreUnknownColumns(ctx)
		}
		got, err := dbm.Select[fuzzDest](ctx, m, "SELECT fuzz")

		want, wantErr := fuzzExpect(cols, vals, lenient)
		if err != nil {
			var se *dbm.ScanError
			if !errors.As(err, &se) {
				t.Fatalf("cols %v vals %v: error %v (%T) is not a *dbm.ScanError", cols, vals, err, err)
			}
			if !wantErr {
				t.Fatalf("cols %v vals %v: unexpected error %v", cols, vals, err)
			}
			return
		}
		if wantErr {
			t.Fatalf("cols %v vals %v: no error, got %+v", cols, vals, got)
		}
		if len(cols) == 0 {
			if len(got) != 0 {
				t.Fatalf("no columns: got %d rows", len(got))
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("got %d rows, want 1", len(got))
		}
		if g := got[0]; !fuzzEqual(g, want) {
			t.Fatalf("cols %v vals %v:\n got %+v (in %+v)\nwant %+v (in %+v)", cols, vals, g, g.In, want, want.In)
		}
	})
}

// fuzzExpect computes what scanning one row of cols/vals into a fuzzDest
// must give, or that it must fail.
func fuzzExpect(cols []string, vals []driver.Value, lenient bool) (fuzzDest, bool) {
	var d fuzzDest
	fail := false
	innerLive := false
	for i, c := range cols {
		if (c == "in.n" || c == "in.s") && vals[i] != nil {
			innerLive = true
		}
	}
	if innerLive {
		d.In = &fuzzInner{}
	}
	for i, c := range cols {
		val := vals[i]
		s, isText := val.(string)
		switch c {
		case "zz":
			fail = fail || !lenient
		case "s", "ns", "in.s":
			switch {
			case c == "s" && val == nil:
				fail = true
			case c == "s":
				d.S = s
			case c == "ns" && val != nil:
				d.NS = sql.NullString{String: s, Valid: true}
			case c == "in.s" && val != nil:
				d.In.S = &s
			}
		case "b", "i", "f", "t", "in.n":
			if c == "in.n" && !innerLive {
				continue // NULL under a nil pointer: not scanned
			}
			if val == nil || isText {
				fail = true
				continue
			}
			switch c {
			case "b":
				d.B = val.(bool)
			case "i":
				d.I = val.(int64)
			case "f":
				d.F = val.(float64)
			case "t":
				d.T = val.(time.Time)
			case "in.n":
				d.In.N = val.(int64)
			}
		case "p":
			if isText {
				fail = true
			} else if val != nil {
				n := val.(int64)
				d.P = &n
			}
		}
	}
	return d, fail
}

func fuzzEqual(a, b fuzzDest) bool {
	eqPtr := func(x, y *int64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	if a.B != b.B || a.I != b.I || a.S != b.S || !eqPtr(a.P, b.P) || a.F != b.F || a.NS != b.NS || !a.T.Equal(b.T) {
		return false
	}
	if (a.In == nil) != (b.In == nil) {
		return false
	}
	if a.In != nil {
		if a.In.N != b.In.N || (a.In.S == nil) != (b.In.S == nil) || a.In.S != nil && *a.In.S != *b.In.S {
			return false
		}
	}
	return true
}
