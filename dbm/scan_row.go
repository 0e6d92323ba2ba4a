package dbm

import (
	"database/sql"
	"reflect"
	"unsafe"
)

// This file fills destinations row by row. The hot path builds each scan
// target (an `any` holding a *Field that points into the destination) from
// the field's cached type word and its address, without reflect: database/sql
// then converts straight into the caller's memory.

// eface is the runtime's layout of an interface{} value. It has been the
// same since Go 1.0 and every fast encoder relies on it; TestEfaceLayout
// checks it against reflect.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// ptrTypeWord returns the type word of an any that holds a *t.
func ptrTypeWord(t reflect.Type) unsafe.Pointer {
	x := reflect.Zero(reflect.PointerTo(t)).Interface()
	return (*eface)(unsafe.Pointer(&x)).typ
}

// setTarget stores in *dst an any holding the pointer p, whose type word is
// typ: what reflect.NewAt(t, p).Interface() builds, without reflect. The
// store is an ordinary typed write, so the garbage collector's write barrier
// sees it (skipping it saved a few percent while the collector ran, which is
// not worth a heap the collector could misread).
func setTarget(dst *any, typ, p unsafe.Pointer) {
	*dst = *(*any)(unsafe.Pointer(&eface{typ: typ, data: p}))
}

// nullProbe is a scan target that only records whether the column is NULL.
// Columns inside a pointer-to-struct field go to probes first, so that a
// LEFT JOIN's all-NULL side leaves the pointer nil.
type nullProbe struct{ null bool }

func (n *nullProbe) Scan(src any) error {
	n.null = src == nil
	return nil
}

// discard takes a column that a lenient plan skips.
type discard struct{}

func (*discard) Scan(any) error { return nil }

var discardTarget any = new(discard)

// targets returns the scan targets for one result: buf when it is long
// enough (callers pass a stack array, which database/sql's Scan does not
// retain), with the skipped columns already pointing at discard.
func (p *plan) targets(buf []any) []any {
	n := len(p.cols)
	dst := buf[:0]
	if cap(buf) >= n {
		dst = buf[:n]
	} else {
		dst = make([]any, n)
	}
	for i := range p.fields {
		if p.fields[i].skip {
			dst[i] = discardTarget
		}
	}
	return dst
}

// cursor holds what a nested plan needs across the rows of one result.
type cursor struct {
	p      *plan
	dst    []any
	probes []nullProbe
	live   []bool // per pointer node: a column under it is not NULL
	used   []bool // which columns the second pass fills
}

// newCursor returns nil for plans that need no state beyond dst.
func (p *plan) newCursor() *cursor {
	if p.nested == 0 {
		return nil
	}
	n := len(p.cols)
	return &cursor{p: p, dst: p.targets(nil), probes: make([]nullProbe, n), live: make([]bool, p.nested), used: make([]bool, n)}
}

// scanRow scans the current row into the zeroed element at base, using dst
// from [plan.targets] and c from [plan.newCursor].
func (p *plan) scanRow(rows *sql.Rows, base unsafe.Pointer, dst []any, c *cursor) error {
	if c != nil {
		return c.scanNested(rows, base)
	}
	if p.scalar {
		setTarget(&dst[0], p.ptrTyp, base)
	} else {
		for i := range p.fields {
			f := &p.fields[i]
			if !f.skip {
				setTarget(&dst[i], f.ptrTyp, unsafe.Add(base, f.offset))
			}
		}
	}
	if err := rows.Scan(dst...); err != nil {
		return p.explain(rows, err, nil)
	}
	return nil
}

// scanNested handles plans whose columns cross pointers to structs. A first
// Scan fills the direct fields and probes the others for NULL; a pointer is
// allocated only when a column under it is not NULL, and a second Scan then
// fills the fields under the allocated pointers.
func (c *cursor) scanNested(rows *sql.Rows, base unsafe.Pointer) error {
	p := c.p
	for i := range p.fields {
		f := &p.fields[i]
		switch {
		case f.skip:
		case f.node < 0:
			setTarget(&c.dst[i], f.ptrTyp, unsafe.Add(base, f.offset))
		default:
			c.dst[i] = &c.probes[i]
		}
	}
	if err := rows.Scan(c.dst...); err != nil {
		// Only the direct fields were scanned: a NULL under a pointer that
		// stays nil is no fault, and must not be named as the cause.
		for i := range p.fields {
			c.used[i] = p.fields[i].node < 0
		}
		return p.explain(rows, err, c.used)
	}
	clear(c.live)
	found := false
	for i := range p.fields {
		f := &p.fields[i]
		if f.node >= 0 && !c.probes[i].null {
			for _, n := range f.parent {
				c.live[n] = true
			}
			found = true
		}
	}
	if !found {
		return nil // every pointer stays nil
	}
	root := reflect.NewAt(p.elem, base).Elem()
	for i := range p.fields {
		f := &p.fields[i]
		c.used[i] = false
		switch {
		case f.skip:
		case f.node >= 0 && c.live[f.node]:
			c.dst[i] = fieldByIndexAlloc(root, f.index).Addr().Interface()
			c.used[i] = true
		default:
			c.dst[i] = &c.probes[i] // already scanned, or NULL under a nil pointer
		}
	}
	if err := rows.Scan(c.dst...); err != nil {
		return p.explain(rows, err, c.used)
	}
	return nil
}

// sliceHeader is the runtime's layout of a slice.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// iterRows yields every row of r as a T for [Iter]. It looks the plan up
// once and reuses one element and one set of scan targets for the whole
// result, so memory stays flat however many rows stream by.
func iterRows[T any](r *Rows, yield func(T, error) bool) {
	var zero T
	// inScan is true only while a row is scanned: a panic then comes from
	// a Scanner (not from the caller's loop body) and marks the rows.
	inScan := false
	defer func() {
		if inScan {
			r.scanPanicked.Store(true)
		}
	}()
	fail := func(err error) { yield(zero, r.m.wrap(r.ctx, "scan", r.query, err)) }
	cols, err := r.rows.Columns()
	if err != nil {
		fail(err)
		return
	}
	s := r.m.scanner
	typ := reflect.TypeFor[T]()
	var buf [16]any
	switch {
	case typ == mapType:
		binary := binaryColumns(r.rows, cols)
		for r.Next() {
			inScan = true
			m, err := scanMap(r.rows, cols, binary)
			inScan = false
			if err != nil {
				fail(err)
				return
			}
			if !yield(any(m).(T), nil) {
				return
			}
		}
	case typ.Kind() == reflect.Pointer && typ.Elem().Kind() == reflect.Struct && !isScalar(typ.Elem()):
		// Each row gets its own struct: the caller may keep the pointers.
		p, err := s.planFor(typ.Elem(), cols, s.lenient(r.ctx))
		if err != nil {
			fail(err)
			return
		}
		dst, c := p.targets(buf[:]), p.newCursor()
		for r.Next() {
			pv := reflect.New(typ.Elem())
			inScan = true
			err := p.scanRow(r.rows, pv.UnsafePointer(), dst, c)
			inScan = false
			if err != nil {
				fail(err)
				return
			}
			if !yield(pv.Interface().(T), nil) {
				return
			}
		}
	default:
		p, err := s.planFor(typ, cols, s.lenient(r.ctx))
		if err != nil {
			fail(err)
			return
		}
		dst, c := p.targets(buf[:]), p.newCursor()
		v := new(T) // one element for the whole result: rows are yielded by value
		for r.Next() {
			*v = zero
			inScan = true
			err := p.scanRow(r.rows, unsafe.Pointer(v), dst, c)
			inScan = false
			if err != nil {
				fail(err)
				return
			}
			if !yield(*v, nil) {
				return
			}
		}
	}
	if err := r.Err(); err != nil {
		yield(zero, err)
	}
}
