package scan

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
)

type (
	myString  string
	myBytes   []byte
	myBool    bool
	myInt     int
	myInt64   int64
	myUint8   uint8
	myFloat   float64
	upperScan struct{ s string }
	// Defined pointer types have no methods: database/sql neither calls
	// the Scan of what they point to nor converts a string into their []byte.
	scanPtr  *upperScan
	bytesPtr *[]byte
	intPtr   *int32
)

func (u *upperScan) Scan(src any) error {
	switch v := src.(type) {
	case string:
		u.s = "S:" + v
	case []byte:
		u.s = "B:" + string(v)
	case nil:
		u.s = "NULL"
	default:
		return fmt.Errorf("upperScan: %T", src)
	}
	return nil
}

// convTypes are the field types the differential test scans into: every
// kind the fast path handles, named variants, pointers, scanners, and
// types it leaves to database/sql.
var convTypes = []reflect.Type{
	reflect.TypeFor[string](), reflect.TypeFor[myString](), reflect.TypeFor[[]byte](), reflect.TypeFor[myBytes](),
	reflect.TypeFor[any](), reflect.TypeFor[bool](), reflect.TypeFor[myBool](), reflect.TypeFor[time.Time](),
	reflect.TypeFor[float64](), reflect.TypeFor[float32](), reflect.TypeFor[myFloat](),
	reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](), reflect.TypeFor[int32](), reflect.TypeFor[int64](),
	reflect.TypeFor[myInt](), reflect.TypeFor[myInt64](),
	reflect.TypeFor[uint](), reflect.TypeFor[uint8](), reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](),
	reflect.TypeFor[myUint8](),
	reflect.TypeFor[*string](), reflect.TypeFor[*int64](), reflect.TypeFor[*int32](), reflect.TypeFor[*bool](),
	reflect.TypeFor[*float64](), reflect.TypeFor[*time.Time](), reflect.TypeFor[*[]byte](), reflect.TypeFor[*myInt](),
	reflect.TypeFor[sql.NullString](), reflect.TypeFor[sql.NullInt64](), reflect.TypeFor[sql.NullTime](),
	reflect.TypeFor[*sql.NullString](), reflect.TypeFor[upperScan](), reflect.TypeFor[sql.Null[int32]](),
	reflect.TypeFor[scanPtr](), reflect.TypeFor[bytesPtr](), reflect.TypeFor[intPtr](),
	reflect.TypeFor[json.RawMessage](), reflect.TypeFor[*json.RawMessage](), reflect.TypeFor[*myBytes](),
	reflect.TypeFor[jsonLike[any]](), reflect.TypeFor[*jsonLike[int64]](), reflect.TypeFor[jsonLike[string]](),
}

// jsonLike is a generic type with a Scan method, as dbm.JSON is.
type jsonLike[T any] struct{ V T }

func (j *jsonLike[T]) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		var zero T
		j.V = zero
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("jsonLike: %T", src)
	}
	return json.Unmarshal(b, &j.V)
}

// convValues are driver values of every type a driver may return, at the
// edges of each field size.
var convValues = []driver.Value{
	nil, true, false,
	int64(0), int64(1), int64(-1), int64(127), int64(128), int64(-128), int64(-129), int64(255), int64(256),
	int64(32767), int64(32768), int64(-32769), int64(65535), int64(65536), int64(math.MaxInt32), int64(math.MaxInt32 + 1),
	int64(math.MinInt32), int64(math.MinInt32 - 1), int64(math.MaxUint32), int64(math.MaxUint32 + 1),
	int64(math.MaxInt64), int64(math.MinInt64),
	float64(0), float64(3), float64(-2.5), 1e300, math.MaxFloat32 * 2, float64(1) / 3,
	"", "12", "-5", "300", "1.5", "1e3", "abc", "true", " 7", "0x1f", "9223372036854775808", "18446744073709551615",
	[]byte(""), []byte("12"), []byte("-129"), []byte("2.25"), []byte("xyz"), []byte("false"), []byte(nil),
	time.Date(2026, 11, 27, 21, 0, 0, 123, time.UTC), time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 19800)),
}

// TestFastConversionsMatchDatabaseSQL scans every value into every type
// twice: with database/sql's Rows.Scan, and through a Scanner, whose
// fast path converts the common cases itself. Results must be identical,
// errors must agree, and the fast path must really be taken where it
// claims to handle a case.
func TestFastConversionsMatchDatabaseSQL(t *testing.T) {
	fastHits := 0
	for _, typ := range convTypes {
		for _, val := range convValues {
			name := fmt.Sprintf("%v<-%T(%v)", typ, val, val)
			want, wantErr := scanWithDatabaseSQL(t, typ, val)
			for _, scalar := range []bool{false, true} {
				got, p, gotErr := scanWith(New(Config{}), t, typ, val, scalar)
				if (gotErr != nil) != (wantErr != nil) {
					t.Errorf("%s (scalar %v): scanner error %v, database/sql error %v", name, scalar, gotErr, wantErr)
					continue
				}
				if wantErr == nil && !reflect.DeepEqual(got, want) {
					t.Errorf("%s (scalar %v): scanner %#v, database/sql %#v", name, scalar, got, want)
				}
				if p != nil && p.fast && !p.slow.Load() {
					fastHits++
					if wantErr != nil {
						t.Errorf("%s: the fast path kept an error case", name)
					}
				}
			}
		}
	}
	t.Logf("the fast path handled %d cases", fastHits)
	if fastHits < 300 {
		t.Errorf("the fast path handled only %d cases; it should take most of them", fastHits)
	}
}

// TestBytesKindedTypesStayFast: json.RawMessage and other []byte-kinded
// fields take the fast path for text (SQLite's JSON) and bytes alike, and
// hold a copy of the value.
func TestBytesKindedTypesStayFast(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[json.RawMessage](), reflect.TypeFor[*json.RawMessage](), reflect.TypeFor[myBytes]()} {
		for _, val := range []driver.Value{`{"a":1}`, []byte(`{"a":1}`)} {
			for _, scalar := range []bool{false, true} {
				got, p, err := scanWith(New(Config{}), t, typ, val, scalar)
				if err != nil || p == nil || !p.fast || p.slow.Load() {
					t.Errorf("%v <- %T (scalar %v): err %v; want the fast path", typ, val, scalar, err)
					continue
				}
				if v := reflect.Indirect(reflect.ValueOf(got)); string(v.Bytes()) != `{"a":1}` {
					t.Errorf("%v <- %T: got %q", typ, val, v.Bytes())
				}
			}
		}
	}
}

func scanWithDatabaseSQL(t *testing.T, typ reflect.Type, val driver.Value) (any, error) {
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mock.ExpectQuery("SELECT").WillReturnRows(sqlmock.NewRows([]string{"v"}).AddRow(val))
	rows, err := db.Query("SELECT v")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no row")
	}
	// A []byte-kinded type scans as a []byte would (see bytes.go),
	// where database/sql alone takes no string.
	like := typ
	switch {
	case bytesKinded(typ):
		like = bytesType
	case typ.Kind() == reflect.Pointer && typ.Name() == "" && bytesKinded(typ.Elem()):
		like = reflect.PointerTo(bytesType)
	}
	dest := reflect.New(like)
	if err := rows.Scan(dest.Interface()); err != nil {
		return nil, err
	}
	if like != typ {
		return dest.Elem().Convert(typ).Interface(), nil
	}
	return dest.Elem().Interface(), nil
}

// mockRows returns rows of go-sqlmock holding vals under cols; they are
// closed when the test ends.
func mockRows(t *testing.T, cols []string, vals ...[]driver.Value) *sql.Rows {
	t.Helper()
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := sqlmock.NewRows(cols)
	for _, v := range vals {
		r.AddRow(v...)
	}
	mock.ExpectQuery("SELECT").WillReturnRows(r)
	rows, err := db.Query("SELECT v")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rows.Close() })
	return rows
}

// scanWith scans val with s, as ExecuteQuery does, into struct{V typ} or,
// when scalar, into typ itself. It returns the plan used. Pass a new
// scanner for a plan that starts fast.
func scanWith(s *Scanner, t *testing.T, typ reflect.Type, val driver.Value, scalar bool) (any, *plan, error) {
	elem := typ
	if !scalar {
		elem = reflect.StructOf([]reflect.StructField{{Name: "V", Type: typ, Tag: `db:"v"`}})
	}
	if scalar && !isScalar(typ) {
		v, err := scanWithDatabaseSQL(t, typ, val) // a struct without a Scan method is not a scalar destination
		return v, nil, err
	}
	dest := reflect.New(reflect.SliceOf(elem))
	d, err := s.Dest("ExecuteQuery", dest.Interface())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.All(mockRows(t, []string{"v"}, []driver.Value{val}), &d, false)
	var p *plan
	if pl := s.plansOf(elem).plans.Load(); pl != nil && len(*pl) > 0 {
		p = (*pl)[0]
	}
	if err != nil {
		d.Empty()
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%v <- %T: error %v is not a *Error", typ, val, err)
		}
		return nil, p, err
	}
	out := dest.Elem().Index(0)
	if !scalar {
		out = out.Field(0)
	}
	return out.Interface(), p, nil
}

// The fast path's pooled buffers are shared by plans of the same width:
// one whose first column is skipped (lenient) must not leave its discard
// target to the next, nor a fallen-back plan its targets into a caller's
// memory.
func TestFastPathBuffersReusedAcrossPlans(t *testing.T) {
	s := New(Config{})
	type ab struct {
		A int64  `db:"a"`
		B string `db:"b"`
	}
	type onlyB struct {
		B string `db:"b"`
	}
	tb, err := ElemTarget("Select", "T", reflect.TypeFor[onlyB]())
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ElemTarget("Select", "T", reflect.TypeFor[ab]())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		got, err := Append[onlyB](s, mockRows(t, []string{"x", "b"}, []driver.Value{1, "skipped-x"}), tb, true, nil)
		if err != nil || len(got) != 1 || got[0].B != "skipped-x" {
			t.Fatalf("round %d lenient: %+v, %v", i, got, err)
		}
		all, err := Append[ab](s, mockRows(t, []string{"a", "b"}, []driver.Value{int64(i), "full"}), tab, false, nil)
		if err != nil || len(all) != 1 || all[0] != (ab{A: int64(i), B: "full"}) {
			t.Fatalf("round %d full: %+v, %v", i, all, err)
		}
	}
}
