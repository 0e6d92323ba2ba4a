package scan

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// newSafe returns a scanner without the fast path: database/sql's
// conversions only, and scan targets built by reflect rather than from
// type words (no unsafe on the per-row path).
func newSafe(c Config) *Scanner {
	s := New(c)
	s.safe = true
	return s
}

type safeAuthor struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

type safeBook struct {
	ID     int64          `db:"id"`
	Title  string         `db:"title"`
	Price  float64        `db:"price"`
	Seen   time.Time      `db:"seen"`
	Note   *string        `db:"note"`
	Tags   []byte         `db:"tags"`
	Ok     bool           `db:"ok"`
	Small  int8           `db:"small"`
	Nick   sql.NullString `db:"nick"`
	Author *safeAuthor    `db:"author"`
}

// safeCase is one result scanned into a slice of elem.
type safeCase struct {
	name    string
	elem    reflect.Type
	cols    []string
	rows    [][]driver.Value
	lenient bool
}

func safeCases() []safeCase {
	seen := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	book := reflect.TypeFor[safeBook]()
	flat := []string{"id", "title", "price", "seen", "note", "tags", "ok", "small", "nick"}
	flatRow := func(i int64) []driver.Value {
		return []driver.Value{i, fmt.Sprint("t", i), float64(i) / 2, seen, nil, []byte("a,b"), i%2 == 0, i, "n"}
	}
	cases := []safeCase{
		{name: "flat", elem: book, cols: flat, rows: [][]driver.Value{flatRow(1), flatRow(2), flatRow(3)}},
		{name: "flat text and bytes", elem: book, cols: flat, rows: [][]driver.Value{
			{"7", []byte("seven"), "2.5", seen, "a note", "text tags", true, "-3", nil}}},
		{name: "pointers to structs", elem: reflect.TypeFor[*safeBook](), cols: flat, rows: [][]driver.Value{flatRow(4), flatRow(5)}},
		{name: "nested, NULL and not", elem: book, cols: []string{"id", "author.id", "author.name"}, rows: [][]driver.Value{
			{int64(1), nil, nil}, {int64(2), int64(9), "ann"}, {int64(3), nil, "bob"}}},
		{name: "lenient skip", elem: reflect.TypeFor[safeAuthor](), cols: []string{"x", "id", "y", "name"}, lenient: true,
			rows: [][]driver.Value{{1, int64(1), "z", "ann"}, {2, int64(2), "z", "bob"}}},
		{name: "fallback mid-result", elem: reflect.TypeFor[safeAuthor](), cols: []string{"id", "name"}, rows: [][]driver.Value{
			{int64(1), "ann"}, {"2", "bob"}, {2.0, 3.5}, {int64(4), time.Unix(0, 0).UTC()}}},
		{name: "scalar", elem: reflect.TypeFor[int32](), cols: []string{"n"}, rows: [][]driver.Value{{int64(1)}, {"2"}, {int64(3)}}},
		{name: "scalar time", elem: reflect.TypeFor[time.Time](), cols: []string{"t"}, rows: [][]driver.Value{{seen}}},
		{name: "maps", elem: reflect.TypeFor[map[string]any](), cols: []string{"a", "b"}, rows: [][]driver.Value{{int64(1), []byte("x")}}},
		// errors
		{name: "NULL into int", elem: reflect.TypeFor[safeAuthor](), cols: []string{"id", "name"}, rows: [][]driver.Value{{int64(1), "a"}, {nil, "b"}}},
		{name: "unconvertible", elem: book, cols: flat, rows: [][]driver.Value{{"x", "t", 1.0, seen, nil, nil, true, int64(1), nil}}},
		{name: "out of range", elem: book, cols: flat, rows: [][]driver.Value{{int64(1), "t", 1.0, seen, nil, nil, true, int64(300), nil}}},
		{name: "unknown column", elem: reflect.TypeFor[safeAuthor](), cols: []string{"id", "nope"}, rows: [][]driver.Value{{int64(1), 2}}},
		{name: "duplicate column", elem: reflect.TypeFor[safeAuthor](), cols: []string{"id", "id"}, rows: [][]driver.Value{{int64(1), int64(2)}}},
		{name: "scalar, two columns", elem: reflect.TypeFor[string](), cols: []string{"a", "b"}, rows: [][]driver.Value{{"x", "y"}}},
	}
	// Every value into every field type the conversion test knows, as a
	// one-column struct and as a scalar.
	for _, typ := range convTypes {
		for _, v := range convValues { // one result per value: a failure ends a result
			cases = append(cases, safeCase{name: fmt.Sprintf("%v<-%T(%v)", typ, v, v),
				elem: reflect.StructOf([]reflect.StructField{{Name: "V", Type: typ, Tag: `db:"v"`}}),
				cols: []string{"v"}, rows: [][]driver.Value{{v}}})
			if isScalar(typ) {
				cases = append(cases, safeCase{name: fmt.Sprintf("scalar %v<-%T(%v)", typ, v, v), elem: typ,
					cols: []string{"v"}, rows: [][]driver.Value{{v}}})
			}
		}
	}
	return cases
}

// safeResult is what one way of scanning a case gave.
type safeResult struct {
	all     any // ExecuteQuery: the slice
	allErr  string
	one     any // Get: the first row
	oneErr  string
	each    []any // Iter: the rows yielded
	eachErr string
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var se *Error
	var ae *ArgError
	if !errors.As(err, &se) && !errors.As(err, &ae) {
		return "driver: " + err.Error() // database/sql's, from the ordinary scan
	}
	return fmt.Sprintf("%T %v", err, err)
}

func runSafeCase(t *testing.T, s *Scanner, c safeCase) safeResult {
	var r safeResult
	dest := reflect.New(reflect.SliceOf(c.elem))
	d, err := s.Dest("ExecuteQuery", dest.Interface())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.All(mockRows(t, c.cols, c.rows...), &d, c.lenient); err != nil {
		d.Empty()
		r.allErr = errText(err)
	}
	r.all = dest.Elem().Interface()

	rows := mockRows(t, c.cols, c.rows...)
	one := reflect.New(c.elem)
	if rows.Next() {
		r.oneErr = errText(s.One(rows, nil, one.Elem(), c.lenient))
	}
	r.one = one.Elem().Interface()

	// Each is generic: read through the element's own instance for the
	// types that have one, else through All's row by row equivalent.
	each := func(v any) bool { r.each = append(r.each, v); return true }
	var eerr error
	switch c.elem {
	case reflect.TypeFor[safeBook]():
		_, eerr = Each(s, mockRows(t, c.cols, c.rows...), c.lenient, func(v safeBook) bool { return each(v) })
	case reflect.TypeFor[*safeBook]():
		_, eerr = Each(s, mockRows(t, c.cols, c.rows...), c.lenient, func(v *safeBook) bool { return each(*v) })
	case reflect.TypeFor[safeAuthor]():
		_, eerr = Each(s, mockRows(t, c.cols, c.rows...), c.lenient, func(v safeAuthor) bool { return each(v) })
	case reflect.TypeFor[int32]():
		_, eerr = Each(s, mockRows(t, c.cols, c.rows...), c.lenient, func(v int32) bool { return each(v) })
	}
	r.eachErr = errText(eerr)
	return r
}

// TestSafeAndFastPathsAgree scans the same results with the fast path (the
// default) and without it (safe: database/sql's conversions, targets built
// by reflect), through All, One and Each, and requires the same values and
// the same errors.
func TestSafeAndFastPathsAgree(t *testing.T) {
	n := 0
	for _, c := range safeCases() {
		fast := runSafeCase(t, New(Config{}), c)
		safe := runSafeCase(t, newSafe(Config{}), c)
		if !reflect.DeepEqual(fast, safe) {
			t.Errorf("%s:\n fast %#v\n safe %#v", c.name, fast, safe)
		}
		n++
	}
	if n < 500 {
		t.Fatalf("only %d cases", n)
	}
}

// TestSafeScannerTakesNoFastPath: the safe scanner's plans never take the
// fast path, or the comparison above would compare the fast path with
// itself; the default scanner's do.
func TestSafeScannerTakesNoFastPath(t *testing.T) {
	for _, s := range []*Scanner{New(Config{}), newSafe(Config{})} {
		p, err := s.planFor(reflect.TypeFor[safeAuthor](), []string{"id", "name"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.fast == s.safe || p.safe != s.safe {
			t.Errorf("safe scanner %v: plan fast %v, safe %v", s.safe, p.fast, p.safe)
		}
	}
}
