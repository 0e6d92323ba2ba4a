package scan

import (
	"reflect"
	"strings"
	"unsafe"
)

// This file is the scanner's interface to package dbm: destinations are
// checked here (before anything runs), and rows are read into them.

// Target describes the elements that a call fills.
type Target struct {
	slice reflect.Value // *dest, settable (sliceTarget only)
	elem  reflect.Type  // the element type, or T for []*T
	ptrs  bool          // elements are *T
	maps  bool          // elements are map[string]any
	plans *planList     // elem's plans when known (a Dest's); nil: looked up
}

var mapType = reflect.TypeFor[map[string]any]()

// sliceTarget validates an ExecuteQuery destination before anything runs.
func sliceTarget(fn string, dest any) (Target, error) {
	if dest == nil {
		return Target{}, &ArgError{Func: fn, Arg: "dest", Reason: "nil; pass a pointer to a slice such as &users"}
	}
	v := reflect.ValueOf(dest)
	if v.Kind() != reflect.Pointer {
		return Target{}, &ArgError{Func: fn, Arg: "dest", Reason: "not a pointer (" + v.Type().String() + "); pass a pointer to a slice such as &users"}
	}
	if v.IsNil() {
		return Target{}, &ArgError{Func: fn, Arg: "dest", Reason: "nil pointer (" + v.Type().String() + ")"}
	}
	sv := v.Elem()
	if sv.Kind() != reflect.Slice {
		return Target{}, &ArgError{Func: fn, Arg: "dest", Reason: "points to " + sv.Type().String() + ", not a slice; use Get for one row"}
	}
	t, err := ElemTarget(fn, "dest", sv.Type().Elem())
	t.slice = sv
	return t, err
}

// ElemTarget describes a slice element type (arg names it in errors): a
// struct or scalar, a pointer to a struct, or a map.
func ElemTarget(fn, arg string, elem reflect.Type) (Target, error) {
	// Each case returns a literal: building a target field by field and
	// then copying it out stalls on the copy, which showed in benchmarks.
	switch elem.Kind() {
	case reflect.Struct:
		return Target{elem: elem}, nil
	case reflect.Map:
		if typeKey(elem) == typeKey(mapType) {
			return Target{elem: elem, maps: true}, nil
		}
	case reflect.Pointer:
		if e := elem.Elem(); e.Kind() == reflect.Struct && !isScalar(e) {
			return Target{elem: e, ptrs: true}, nil
		}
	}
	if err := CheckElem(fn, arg, elem); err != nil {
		return Target{}, err
	}
	return Target{elem: elem}, nil
}

// destFact is what the scanner works out once per destination type *[]E,
// kept in that type's entry of the type cache.
type destFact struct {
	t    Target       // E as an element (t.slice unset; t.plans set, but for maps)
	et   reflect.Type // E
	size uintptr      // E's size
}

// Dest is a checked ExecuteQuery destination: a *[]E.
type Dest struct {
	dest  any          // the *[]E the caller passed
	hdr   *sliceHeader // *dest
	fact  *destFact
	dirty int // during All: elements below this may hold the caller's old values
}

// Dest validates an ExecuteQuery destination before anything runs (fn
// names the call in errors). A type seen before reaches its slice header
// without reflect.
func (s *Scanner) Dest(fn string, dest any) (Dest, error) {
	e := (*eface)(unsafe.Pointer(&dest))
	var ti *typeInfo
	if e.typ != nil {
		ti = s.info(e.typ)
		if f := ti.dest.Load(); f != nil && e.data != nil {
			return Dest{dest: dest, hdr: (*sliceHeader)(e.data), fact: f}, nil
		}
	}
	t, err := sliceTarget(fn, dest)
	if err != nil {
		return Dest{}, err
	}
	et := t.slice.Type().Elem()
	f := &destFact{t: Target{elem: t.elem, ptrs: t.ptrs, maps: t.maps}, et: et, size: et.Size()}
	if !t.maps {
		f.t.plans = s.plansOf(t.elem) // no second lookup per call
	}
	ti.dest.CompareAndSwap(nil, f)
	return Dest{dest: dest, hdr: (*sliceHeader)(unsafe.Pointer(t.slice.UnsafeAddr())), fact: f}, nil
}

// Empty leaves the destination empty (its capacity kept), as after an error.
func (d *Dest) Empty() { d.hdr.len = 0 }

// Done makes a nil destination empty: with no rows, *dest is empty, not
// nil. It runs last so that a result with rows allocates no empty slice.
func (d *Dest) Done() {
	if d.hdr.data == nil {
		if sl := reflect.ValueOf(d.dest).Elem(); sl.IsNil() {
			sl.Set(reflect.MakeSlice(sl.Type(), 0, 0))
		}
	}
}

// All replaces the destination's elements with every row of rows (lenient:
// this call skips unknown columns). It returns how many rows it stored.
// It is small enough to be inlined into its caller: a frame less.
func (s *Scanner) All(rows Rows, d *Dest, lenient bool) (int, error) {
	return s.scanAll(rows, &d.fact.t, lenient, d, nil)
}

// next appends a zero element to the destination for scanAll and returns
// its address. Elements that still hold the caller's values are zeroed
// first; memory past the old capacity comes zeroed.
func (d *Dest) next() unsafe.Pointer {
	n := d.hdr.len
	if n == d.hdr.cap {
		reflect.ValueOf(d.dest).Elem().Grow(1)
	}
	elem := unsafe.Add(d.hdr.data, uintptr(n)*d.fact.size)
	d.hdr.len = n + 1
	if n < d.dirty {
		reflect.NewAt(d.fact.et, elem).Elem().SetZero()
	}
	return elem
}

// Append appends every row of rows, as a T described by t, to out[:0] and
// returns the slice: [Scanner.All] for a []T the caller makes, which grows
// with a plain append instead of through reflect.
func Append[T any](s *Scanner, rows Rows, t Target, lenient bool, out []T) ([]T, error) {
	out = out[:0]
	_, err := s.scanAll(rows, &t, lenient, nil, func() unsafe.Pointer {
		var zero T
		out = append(out, zero)
		return unsafe.Pointer(&out[len(out)-1])
	})
	return out, err
}

// OneTarget validates a Get or StructScan destination: a non-nil pointer.
func OneTarget(fn string, dest any) (reflect.Value, error) {
	if dest == nil {
		return reflect.Value{}, &ArgError{Func: fn, Arg: "dest", Reason: "nil; pass a pointer such as &user"}
	}
	v := reflect.ValueOf(dest)
	if v.Kind() != reflect.Pointer {
		return reflect.Value{}, &ArgError{Func: fn, Arg: "dest", Reason: "not a pointer (" + v.Type().String() + "); pass a pointer such as &user"}
	}
	if v.IsNil() {
		return reflect.Value{}, &ArgError{Func: fn, Arg: "dest", Reason: "nil pointer (" + v.Type().String() + ")"}
	}
	if err := CheckElem(fn, "dest", v.Type().Elem()); err != nil {
		return reflect.Value{}, err
	}
	if err := CheckOneRow(fn, "dest", v.Type().Elem()); err != nil {
		return reflect.Value{}, err
	}
	return v.Elem(), nil
}

// CheckOneRow rejects a slice as the destination of one row (Get, One),
// the mistake of passing &users to Get: a slice of rows needs ExecuteQuery
// or Select. A slice one column can fill stays allowed: a []byte-kinded
// type (bytea, json.RawMessage) or one with a Scan method (pq.StringArray).
func CheckOneRow(fn, arg string, t reflect.Type) error {
	if t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 || reflect.PointerTo(t).Implements(scannerType) {
		return nil
	}
	return &ArgError{Func: fn, Arg: arg, Reason: t.String() + " is a slice, and " + fn +
		" reads one row; for all rows use ExecuteQuery (dest *" + t.String() + ") or Select[" + t.Elem().String() + "]"}
}

// CheckElem rejects element types that cannot receive a column; arg names
// where the type came from ("dest", or "T" of a generic helper).
func CheckElem(fn, arg string, t reflect.Type) error {
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
		return &ArgError{Func: fn, Arg: arg, Reason: "unsupported element type " + t.String()}
	case reflect.Map:
		if t != mapType {
			return &ArgError{Func: fn, Arg: arg, Reason: "unsupported element type " + t.String() + " (maps must be map[string]any)"}
		}
	}
	return nil
}

// scanAll stores every row in the elements that next adds to the
// destination, one per row: elements are scanned in place, and each row's
// fields receive their columns directly, with no per-row copy. next
// returns the address of a new zero element (of t's element type as it
// sits in the slice: a *T for []*T, a map for []map[string]any). n is how
// many elements it added. [Scanner.All] passes its [Dest] as d instead of
// a next: d is emptied (its capacity kept) for this attempt, and its
// elements come from d.next, called directly.
func (s *Scanner) scanAll(rows Rows, t *Target, lenient bool, d *Dest, next func() unsafe.Pointer) (n int, err error) {
	if d != nil {
		d.hdr.len, d.dirty = 0, d.hdr.cap
	}
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	if t.maps {
		if err := checkMapColumns(cols); err != nil {
			return 0, err
		}
		binary := binaryColumns(rows, cols)
		for rows.Next() {
			m, err := scanMap(rows, cols, binary)
			if err != nil {
				return n, err
			}
			var elem unsafe.Pointer
			if d != nil {
				elem = d.next()
			} else {
				elem = next()
			}
			*(*map[string]any)(elem) = m
			n++
		}
		return n, nil
	}
	pl := t.plans
	if pl == nil {
		pl = s.plansOf(t.elem)
	}
	lenient = s.lenient(lenient)
	p := pl.find(cols, lenient) // the cached plan, found here: a frame less
	if p == nil {
		if p, err = s.planIn(pl, t.elem, cols, lenient); err != nil {
			return 0, err
		}
	}
	dst, rb := p.targets()
	// rb goes back at each return, not in a defer (which costs a one-row
	// read more than the rest of this function): a panic in a Scanner
	// leaves it to the garbage collector instead.
	c := p.newCursor()
	for rows.Next() {
		var elem unsafe.Pointer
		if d != nil {
			elem = d.next()
		} else {
			elem = next()
		}
		n++
		if t.ptrs {
			pv := reflect.New(t.elem).UnsafePointer()
			*(*unsafe.Pointer)(elem) = pv
			elem = pv
		}
		var err error
		if c == nil && p.fast && !p.slow.Load() {
			err = p.scanFast(rows, elem, dst) // what scanRow would call, a frame less
		} else {
			err = p.scanRow(rows, elem, dst, c)
		}
		if err != nil {
			rb.release(p)
			return n, err
		}
	}
	rb.release(p)
	return n, nil
}

// One scans the current row into v (addressable; from [OneTarget]). cols,
// the result's columns, may be nil.
func (s *Scanner) One(rows Rows, cols []string, v reflect.Value, lenient bool) error {
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
		if err := s.One(rows, cols, pv.Elem(), lenient); err != nil {
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
	p, err := s.planFor(v.Type(), cols, s.lenient(lenient))
	if err != nil {
		return err
	}
	v.SetZero()
	dst, rb := p.targets()
	err = p.scanRow(rows, unsafe.Pointer(v.UnsafeAddr()), dst, p.newCursor())
	rb.release(p)
	return err
}

// scanMap reads one row as column name -> value. Drivers that return text
// as []byte (MySQL, some SQLite types) get strings, except for binary
// columns, which stay []byte.
func scanMap(rows Rows, cols []string, binary []bool) (map[string]any, error) {
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
func binaryColumns(rows Rows, cols []string) []bool {
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

// Each reads the rows of rows one at a time as T and hands each to yield
// (lenient: this call skips unknown columns). It looks the plan up once
// and reuses one element and one set of scan targets for the whole
// result, so memory stays flat however many rows stream by. It stops at
// the first error, which it returns, or when yield returns false, and
// then reports stopped. It does not check the rows' Err at the end.
func Each[T any](s *Scanner, rows Rows, lenient bool, yield func(T) bool) (stopped bool, err error) {
	var zero T
	cols, err := rows.Columns()
	if err != nil {
		return false, err
	}
	typ := reflect.TypeFor[T]()
	switch {
	case typ == mapType:
		if err := checkMapColumns(cols); err != nil {
			return false, err
		}
		binary := binaryColumns(rows, cols)
		for rows.Next() {
			m, err := scanMap(rows, cols, binary)
			if err != nil {
				return false, err
			}
			if !yield(any(m).(T)) {
				return true, nil
			}
		}
	case typ.Kind() == reflect.Pointer && typ.Elem().Kind() == reflect.Struct && !isScalar(typ.Elem()):
		// Each row gets its own struct: the caller may keep the pointers.
		p, err := s.planFor(typ.Elem(), cols, s.lenient(lenient))
		if err != nil {
			return false, err
		}
		dst, rb := p.targets()
		defer rb.release(p)
		c := p.newCursor()
		for rows.Next() {
			pv := reflect.New(typ.Elem())
			if err := p.scanRow(rows, pv.UnsafePointer(), dst, c); err != nil {
				return false, err
			}
			if !yield(pv.Interface().(T)) {
				return true, nil
			}
		}
	default:
		p, err := s.planFor(typ, cols, s.lenient(lenient))
		if err != nil {
			return false, err
		}
		dst, rb := p.targets()
		defer rb.release(p)
		c := p.newCursor()
		v := new(T) // one element for the whole result: rows are yielded by value
		for rows.Next() {
			*v = zero
			if err := p.scanRow(rows, unsafe.Pointer(v), dst, c); err != nil {
				return false, err
			}
			if !yield(*v) {
				return true, nil
			}
		}
	}
	return false, nil
}
