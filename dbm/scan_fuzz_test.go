package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type fuzzInner struct {
	N int64            `db:"n"`
	S *string          `db:"s"`
	J *json.RawMessage `db:"j"`
}

type fuzzBase struct {
	B bool `db:"b"`
}

type fuzzNested struct {
	X int32 `db:"x"`
}

type fuzzDest struct {
	fuzzBase
	I   int64           `db:"i"`
	S   string          `db:"s"`
	P   *int64          `db:"p"`
	F   float64         `db:"f"`
	NS  sql.NullString  `db:"ns"`
	T   time.Time       `db:"t"`
	U   uint8           `db:"u"`
	Raw []byte          `db:"raw"`
	A   any             `db:"a"`
	NN  fuzzNested      `db:"nn"`
	In  *fuzzInner      `db:"in"`
	J   json.RawMessage `db:"j"`
}

// fuzzFields are the columns the fuzzer picks from, each with the field it
// fills; "zz" has none. Columns under "in." fill the pointer-to-struct
// field, which stays nil when they are all NULL.
type fuzzField struct {
	col   string
	field func(d *fuzzDest) any
}

var fuzzFields = []fuzzField{
	{"b", func(d *fuzzDest) any { return &d.B }},
	{"i", func(d *fuzzDest) any { return &d.I }},
	{"s", func(d *fuzzDest) any { return &d.S }},
	{"p", func(d *fuzzDest) any { return &d.P }},
	{"f", func(d *fuzzDest) any { return &d.F }},
	{"ns", func(d *fuzzDest) any { return &d.NS }},
	{"t", func(d *fuzzDest) any { return &d.T }},
	{"u", func(d *fuzzDest) any { return &d.U }},
	{"raw", func(d *fuzzDest) any { return &d.Raw }},
	{"a", func(d *fuzzDest) any { return &d.A }},
	{"nn.x", func(d *fuzzDest) any { return &d.NN.X }},
	{"in.n", func(d *fuzzDest) any { return &inner(d).N }},
	{"in.s", func(d *fuzzDest) any { return &inner(d).S }},
	{"zz", nil},
	// []byte-kinded fields scan as []byte does (scan_bytes.go), where
	// database/sql alone takes no string: the reference scans them so.
	{"j", func(d *fuzzDest) any { return (*[]byte)(&d.J) }},
	{"in.j", func(d *fuzzDest) any { return (**[]byte)(unsafe.Pointer(&inner(d).J)) }},
}

func inner(d *fuzzDest) *fuzzInner {
	if d.In == nil {
		d.In = new(fuzzInner)
	}
	return d.In
}

// fuzzValue returns a driver value of a type chosen by kind: NULL, int64,
// float64, bool, text as []byte or string, time.Time or binary bytes.
func fuzzValue(kind byte, v int64) driver.Value {
	switch kind % 8 {
	case 0:
		return nil
	case 1:
		return v
	case 2:
		return float64(v) / 4
	case 3:
		return v%2 == 0
	case 4:
		return []byte(strconv.FormatInt(v, 10))
	case 5:
		texts := []string{strconv.FormatInt(v, 10), "x", "true", "1.5", "", "2024-01-02 03:04:05"}
		return texts[uint64(v)%uint64(len(texts))]
	case 6:
		return time.Unix(v%1e10, 0).UTC()
	default:
		return []byte{0xff, byte(v), 0}
	}
}

// fuzzResult is what one way of reading the rows gave back.
type fuzzResult struct {
	rows   []any // the rows, *fuzzDest dereferenced
	err    error
	prefix bool // Iter: the rows before an error are yielded
	first  bool // One: only the first row is read
}

type fuzzRead func(ctx context.Context, m *dbm.Manager) fuzzResult

const fuzzQuery = "SELECT fuzz"

func rowValues[T any](got []T) []any {
	out := make([]any, len(got))
	for i, v := range got {
		out[i] = rowValue(v)
	}
	return out
}

func rowValue(v any) any {
	if d, ok := v.(*fuzzDest); ok {
		return *d // a nil pointer would panic here, which is a failure too
	}
	return v
}

func selectOf[T any](ctx context.Context, m *dbm.Manager) fuzzResult {
	got, err := dbm.Select[T](ctx, m, fuzzQuery)
	return fuzzResult{rows: rowValues(got), err: err}
}

func iterOf[T any](ctx context.Context, m *dbm.Manager) fuzzResult {
	r := fuzzResult{prefix: true}
	for v, err := range dbm.Iter[T](ctx, m, fuzzQuery) {
		if err != nil {
			r.err = err
			break
		}
		r.rows = append(r.rows, rowValue(v))
	}
	return r
}

func oneOf[T any](ctx context.Context, m *dbm.Manager) fuzzResult {
	v, err := dbm.One[T](ctx, m, fuzzQuery)
	if err != nil {
		return fuzzResult{err: err, first: true}
	}
	return fuzzResult{rows: []any{rowValue(v)}, first: true}
}

// execDirty reads into a slice that already holds rows and spare capacity
// with old values: none of them may show through.
func execDirty(ctx context.Context, m *dbm.Manager) fuzzResult {
	old := fuzzDest{I: 99, S: "old", F: 9, U: 9, Raw: []byte("old"), A: "old", NN: fuzzNested{X: 9}, In: &fuzzInner{N: 9}}
	old.B = true
	dest := slices.Repeat([]fuzzDest{old}, 3)[:2]
	err := m.ExecuteQuery(ctx, &dest, fuzzQuery)
	return fuzzResult{rows: rowValues(dest), err: err}
}

// fuzzScalar is a scalar destination type and the reads into it.
type fuzzScalar struct {
	typ   reflect.Type
	reads []fuzzRead
}

func scalar[T any]() fuzzScalar {
	return fuzzScalar{reflect.TypeFor[T](), []fuzzRead{selectOf[T], iterOf[T], oneOf[T]}}
}

var (
	structReads = []fuzzRead{execDirty, selectOf[fuzzDest], selectOf[*fuzzDest], iterOf[fuzzDest], iterOf[*fuzzDest],
		oneOf[fuzzDest], oneOf[*fuzzDest]}
	mapReads    = []fuzzRead{selectOf[map[string]any], iterOf[map[string]any], oneOf[map[string]any]}
	fuzzScalars = []fuzzScalar{scalar[int64](), scalar[string](), scalar[*int64](), scalar[float64](), scalar[bool](),
		scalar[[]byte](), scalar[time.Time](), scalar[sql.NullString](), scalar[uint8](), scalar[any](), scalar[*time.Time]()}
)

// FuzzScanColumns reads random results (a random set of columns, each row's
// values of random driver types, NULLs included) through every way the
// manager scans: ExecuteQuery into a slice with old contents, Select, Iter
// and One, into a struct (embedded, nested, pointer-to-struct, nullable and
// interface fields), a pointer to one, scalars and maps. database/sql's own
// Scan, run column by column on the same rows, is the reference: each row
// must come back as it converts the values, and a value it cannot convert
// must end the read with a *dbm.ScanError that names a failing column.
func FuzzScanColumns(f *testing.F) {
	// data: read (by index), row count, scalar type, column count, the
	// columns, then one value kind per row and column.
	f.Add([]byte{0, 1, 0, 13, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3, 1, 5, 1, 2, 5, 6, 4, 7, 1, 1, 1, 5}, false, int64(42))
	f.Add([]byte{1, 2, 0, 3, 0, 11, 12, 3, 0, 0, 3, 0, 0}, false, int64(-3)) // the inner struct all NULL: stays nil
	f.Add([]byte{3, 1, 0, 3, 11, 0, 12, 0, 3, 5}, false, int64(5))           // inner allocated; NULL into its int64 fails
	f.Add([]byte{0, 1, 0, 2, 11, 1, 0, 7}, false, int64(5))                  // NULL under a nil pointer, then a bad int
	f.Add([]byte{3, 3, 0, 1, 1, 1, 1, 5}, false, int64(7))                   // the third row fails: Iter yields two
	f.Add([]byte{5, 0, 0, 1, 13}, false, int64(9))                           // One, no rows, unknown column: not found
	f.Add([]byte{1, 1, 0, 2, 13, 1, 1, 1}, false, int64(9))                  // unknown column
	f.Add([]byte{1, 1, 0, 2, 13, 1, 1, 1}, true, int64(9))                   // ignored when lenient
	f.Add([]byte{7, 0, 0, 0}, false, int64(0))                               // no columns
	for i := range fuzzScalars {
		f.Add([]byte{8, 2, byte(i), 1, 1, 1, 5}, false, int64(300))
	}
	f.Add([]byte{7, 2, 0, 3, 8, 9, 2, 4, 7, 0, 4, 7, 0}, false, int64(1))            // maps
	f.Add([]byte{0, 3, 0, 3, 1, 14, 15, 1, 5, 5, 1, 4, 0, 1, 0, 7}, false, int64(2)) // json.RawMessage fields: text, bytes, NULL
	f.Add([]byte{2, 2, 0, 2, 14, 15, 5, 5, 1, 2}, false, int64(0))                   // ... and a number, a bool
	// A column count of 128 or more lets a column come twice (138: three).
	f.Add([]byte{0, 1, 0, 138, 1, 2, 1, 5, 5, 5}, false, int64(3))  // "i" twice: duplicate
	f.Add([]byte{0, 1, 0, 138, 13, 1, 13, 5, 5, 5}, true, int64(3)) // "zz" twice, lenient: both skipped
	f.Add([]byte{0, 1, 0, 138, 1, 13, 1, 5, 5, 5}, false, int64(3)) // unknown before the duplicate
	f.Add([]byte{7, 1, 0, 137, 2, 2, 4, 4}, false, int64(3))        // a map with "s" twice
	f.Fuzz(func(t *testing.T, data []byte, lenient bool, v int64) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		how, nrows, scalarIdx, ncols := next(), int(next()%4), int(next()), int(next())
		var read fuzzRead
		var sc *fuzzScalar
		isMap := false
		switch n := len(structReads) + 2; int(how) % n {
		case n - 2:
			read, isMap = mapReads[int(how/byte(n))%len(mapReads)], true
		case n - 1:
			sc = &fuzzScalars[scalarIdx%len(fuzzScalars)]
			read = sc.reads[int(how/byte(n))%len(sc.reads)]
			switch ncols % 16 { // mostly one column; sometimes none or two
			case 14:
				ncols = 0
			case 15:
				ncols = 2
			default:
				ncols = 1
			}
		default:
			read = structReads[int(how)%n]
		}
		var cols []string
		dups := ncols >= 128 // a column may come twice: ErrDuplicateColumn
		for range ncols % (len(fuzzFields) + 1) {
			if c := fuzzFields[int(next())%len(fuzzFields)].col; dups || !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
		if len(cols) == 0 {
			nrows = 0
		}
		values := make([][]driver.Value, nrows)
		for r := range values {
			for c := range cols {
				values[r] = append(values[r], fuzzValue(next(), v+int64(r*16+c)))
			}
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
		for range 2 {
			rows := sqlmock.NewRows(cols)
			for _, vals := range values {
				rows.AddRow(vals...)
			}
			mock.ExpectQuery("SELECT").WillReturnRows(rows)
		}
		want := reference(t, db, cols, sc, isMap, lenient)
		ctx := context.Background()
		if lenient {
			ctx = dbm.IgnoreUnknownColumns(ctx)
		}
		got := read(ctx, m)
		checkScan(t, cols, values, want, got)
	})
}

// fuzzWant is what database/sql's Scan makes of the rows.
type fuzzWant struct {
	planErr error    // ErrUnknownColumn, or ErrInvalidArgument for a scalar and not one column
	rows    []any    // the rows before the first that fails
	failRow int      // -1 if none fails
	failing []string // the columns of failRow that cannot be converted
}

// reference reads the rows with plain database/sql, each column alone into
// the destination it fills (the others into any), into a scalar of sc's
// type, a map (isMap) or a fuzzDest.
func reference(t *testing.T, db *sql.DB, cols []string, sc *fuzzScalar, isMap, lenient bool) fuzzWant {
	w := fuzzWant{failRow: -1}
	switch {
	case sc != nil && len(cols) != 1:
		w.planErr = dbm.ErrInvalidArgument
	case isMap:
		for i, c := range cols {
			if slices.Contains(cols[:i], c) {
				w.planErr = dbm.ErrDuplicateColumn
				break
			}
		}
	case sc == nil:
		// The first column at fault decides: one with no field, or one
		// whose field an earlier column already fills.
		for i, c := range cols {
			if c == "zz" && !lenient {
				w.planErr = dbm.ErrUnknownColumn
				break
			}
			if c != "zz" && slices.Contains(cols[:i], c) {
				w.planErr = dbm.ErrDuplicateColumn
				break
			}
		}
	}
	rows, err := db.Query(fuzzQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		scanCol := func(i int, dest any) {
			try := slices.Clone(ptrs)
			try[i] = dest
			if rows.Scan(try...) != nil {
				w.failing = append(w.failing, cols[i])
			}
		}
		var row any
		switch {
		case sc != nil:
			dest := reflect.New(sc.typ)
			scanCol(0, dest.Interface())
			row = dest.Elem().Interface()
		case isMap: // text arrives as []byte from some drivers; maps hold strings
			m := map[string]any{}
			for i, c := range cols {
				m[c] = raw[i]
				if b, ok := raw[i].([]byte); ok {
					m[c] = string(b)
				}
			}
			row = m
		default:
			var d fuzzDest
			live := false // a column under In is not NULL: In is allocated
			for i, c := range cols {
				live = live || strings.HasPrefix(c, "in.") && raw[i] != nil
			}
			for i, c := range cols {
				f := fuzzFields[slices.IndexFunc(fuzzFields, func(f fuzzField) bool { return f.col == c })].field
				if f != nil && (live || !strings.HasPrefix(c, "in.")) {
					scanCol(i, f(&d))
				}
			}
			row = d
		}
		if len(w.failing) > 0 {
			w.failRow = len(w.rows)
			return w
		}
		w.rows = append(w.rows, row)
	}
	return w
}

// checkScan compares what the manager read with the reference.
func checkScan(t *testing.T, cols []string, values [][]driver.Value, w fuzzWant, got fuzzResult) {
	t.Helper()
	desc := func() string { return "columns " + strings.Join(cols, ",") + " values " + fmtValues(values) }
	if got.first && len(values) == 0 {
		if !errors.Is(got.err, dbm.ErrNotFound) {
			t.Fatalf("%s: One without rows: err = %v, want ErrNotFound", desc(), got.err)
		}
		return
	}
	if w.planErr != nil {
		if !errors.Is(got.err, w.planErr) {
			t.Fatalf("%s: err = %v, want %v", desc(), got.err, w.planErr)
		}
		return
	}
	if got.first && w.failRow != 0 {
		w.failRow, w.rows = -1, w.rows[:1] // One reads the first row only
	}
	if w.failRow >= 0 {
		var se *dbm.ScanError
		if !errors.As(got.err, &se) {
			t.Fatalf("%s: err = %v (%T), want a *dbm.ScanError for one of %v in row %d", desc(), got.err, got.err, w.failing, w.failRow)
		}
		if !slices.Contains(w.failing, se.Column) {
			t.Fatalf("%s: ScanError names column %q (%v), want one of %v (row %d)", desc(), se.Column, got.err, w.failing, w.failRow)
		}
		if errors.Is(got.err, dbm.ErrNullValue) && values[w.failRow][se.Index] != nil {
			t.Fatalf("%s: ErrNullValue for column %q, which is not NULL", desc(), se.Column)
		}
		if !got.prefix {
			w.rows = nil // Select and ExecuteQuery return no rows with an error
		}
	} else if got.err != nil {
		t.Fatalf("%s: unexpected error %v", desc(), got.err)
	}
	if len(got.rows) != len(w.rows) || len(w.rows) > 0 && !reflect.DeepEqual(got.rows, w.rows) {
		t.Fatalf("%s:\n got %#v\nwant %#v", desc(), got.rows, w.rows)
	}
}

func fmtValues(values [][]driver.Value) string {
	var b strings.Builder
	for _, row := range values {
		b.WriteString("[")
		for i, v := range row {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%T(%v)", v, v)
		}
		b.WriteString("]")
	}
	return b.String()
}
