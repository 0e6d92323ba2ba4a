package dbm

import (
	"database/sql"
	"reflect"
	"sync"
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
// retain), with the skipped columns already pointing at discard. For a
// fast plan each target is an `any` of its own, in the same allocation
// after the targets, which Scan fills with the column's driver value (see
// scan_conv.go).
func (p *plan) targets(buf []any) ([]any, *rawBuf) {
	n := len(p.cols)
	var dst []any
	var rb *rawBuf
	switch {
	case p.fast:
		var all []any
		if 2*n <= len(rawBuf{}.all) {
			rb = rawBufs.Get().(*rawBuf)
			all = rb.all[:2*n]
		} else {
			all = make([]any, 2*n)
		}
		dst = all[:n]
		if rb == nil || rb.n != n { // a buffer last used for n columns is ready
			for i := range dst {
				dst[i] = &all[n+i]
			}
		}
	case cap(buf) >= n:
		dst = buf[:n]
	default:
		dst = make([]any, n)
	}
	for i := range p.fields {
		if p.fields[i].skip {
			dst[i] = discardTarget
		}
	}
	return dst, rb
}

// rawBuf holds a fast plan's targets and raw values for one result; they
// are reused through rawBufs, so a short result allocates none.
type rawBuf struct {
	all [32]any
	n   int // all[:n] point at all[n:2n], ready for a result of n columns
}

var rawBufs = sync.Pool{New: func() any { return new(rawBuf) }}

// release gives back the buffer targets took from rawBufs (nil: none),
// once p's result is read. The fast path leaves no value behind (see
// scanFast); a row that fell back left targets into the caller's memory,
// which are dropped.
func (rb *rawBuf) release(p *plan) {
	if rb == nil {
		return
	}
	switch {
	case p.slow.Load():
		clear(rb.all[:])
		rb.n = 0
	case p.skips:
		rb.n = 0 // some targets are discard, not raw values
	default:
		rb.n = len(p.cols)
	}
	rawBufs.Put(rb)
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
	dst, _ := p.targets(nil) // nested plans are never fast: no buffer to give back
	return &cursor{p: p, dst: dst, probes: make([]nullProbe, n), live: make([]bool, p.nested), used: make([]bool, n)}
}

// scanRow scans the current row into the zeroed element at base, using dst
// from [plan.targets] and c from [plan.newCursor].
func (p *plan) scanRow(rows *sql.Rows, base unsafe.Pointer, dst []any, c *cursor) error {
	if c != nil {
		return c.scanNested(rows, base)
	}
	if p.fast && !p.slow.Load() {
		// dst still holds the raw targets: once slow is set, it stays set.
		return p.scanFast(rows, base, dst)
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
			setTarget(&c.dst[i], f.ptrTyp, fieldByIndexAlloc(root, f.index).Addr().UnsafePointer())
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

// scanFast scans the current row the fast way: raw driver values, then
// conversions of our own (scan_conv.go). A value it cannot convert exactly
// as database/sql would makes it scan the row again the ordinary way and
// turn the plan's fast path off.
func (p *plan) scanFast(rows *sql.Rows, base unsafe.Pointer, dst []any) error {
	if err := rows.Scan(dst...); err != nil {
		for _, d := range dst {
			if raw, ok := d.(*any); ok {
				*raw = nil // keep no value alive in the pooled buffer
			}
		}
		return p.explain(rows, err, nil)
	}
	if p.scalar {
		raw := dst[0].(*any)
		ok := p.sconv.set(base, *raw)
		*raw = nil
		if !ok {
			return p.fallBack(rows, base, dst, 0)
		}
		return nil
	}
	for i := range p.fields {
		f := &p.fields[i]
		if f.skip {
			continue
		}
		raw := dst[i].(*any)
		ok := f.conv.set(unsafe.Add(base, f.offset), *raw)
		*raw = nil // keep no value alive past its row
		if !ok {
			return p.fallBack(rows, base, dst, i)
		}
	}
	return nil
}

// fallBack turns the plan's fast path off and scans the current row again
// with database/sql's conversions, into the same element; dst becomes the
// ordinary targets for the rest of the result (scanRow sets them all for
// each row). The fields before column from already hold their values: they
// are not scanned again, so that a Scanner among them is called once per
// row, as database/sql alone would (one that appends would otherwise
// append twice). Column from's field, which a Scanner may have written
// before failing, is zeroed first.
func (p *plan) fallBack(rows *sql.Rows, base unsafe.Pointer, dst []any, from int) error {
	p.slow.Store(true)
	if p.scalar {
		reflect.NewAt(p.elem, base).Elem().SetZero()
		return p.scanRow(rows, base, dst, nil)
	}
	for i := range p.fields {
		f := &p.fields[i]
		switch {
		case f.skip:
		case i < from:
			dst[i] = discardTarget
		default:
			fp := unsafe.Add(base, f.offset)
			if i == from {
				reflect.NewAt(f.typ, fp).Elem().SetZero()
			}
			setTarget(&dst[i], f.ptrTyp, fp)
		}
	}
	if err := rows.Scan(dst...); err != nil {
		return p.explain(rows, err, nil)
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
		if err := checkMapColumns(cols); err != nil {
			fail(err)
			return
		}
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
		p, err := s.planFor(r.hint, typ.Elem(), cols, s.lenient(r.ctx))
		if err != nil {
			fail(err)
			return
		}
		dst, rb := p.targets(buf[:])
		defer rb.release(p)
		c := p.newCursor()
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
		p, err := s.planFor(r.hint, typ, cols, s.lenient(r.ctx))
		if err != nil {
			fail(err)
			return
		}
		dst, rb := p.targets(buf[:])
		defer rb.release(p)
		c := p.newCursor()
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
