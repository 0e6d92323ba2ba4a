package scan

import (
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

// setTarget is the package's setTarget, or for a plan of a safe scanner
// (see [Scanner.safe]) the same target built by reflect: an any holding a
// *targetType(t) that points at at.
func (p *plan) setTarget(dst *any, typ unsafe.Pointer, t reflect.Type, at unsafe.Pointer) {
	if p.safe {
		*dst = reflect.NewAt(targetType(t), at).Interface()
		return
	}
	setTarget(dst, typ, at)
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

// targets returns the scan targets for one result, with the skipped
// columns already pointing at discard. Up to 32 columns they come from a
// pooled buffer, which [rawBuf.release] gives back once the result is
// read (a buffer on the caller's stack would escape: rows are read
// through the Rows interface, whose Scan may keep what it is given). For
// a fast plan each target is an `any` of its own, in the same buffer after
// the targets, which Scan fills with the column's driver value (see
// conv.go).
func (p *plan) targets() ([]any, *rawBuf) {
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
	case n <= len(rawBuf{}.all):
		rb = rawBufs.Get().(*rawBuf)
		dst = rb.all[:n]
	default:
		dst = make([]any, n)
	}
	if p.skips {
		p.skipTargets(dst)
	}
	return dst, rb
}

// skipTargets points the targets of the columns a lenient plan skips at
// discard.
func (p *plan) skipTargets(dst []any) {
	for i := range p.fields {
		if p.fields[i].skip {
			dst[i] = discardTarget
		}
	}
}

// rawBuf holds a plan's targets (and, for a fast plan, its raw values) for
// one result; they are reused through rawBufs, so a short result
// allocates none.
type rawBuf struct {
	all [32]any
	n   int // all[:n] point at all[n:2n], ready for a fast result of n columns
}

var rawBufs = sync.Pool{New: func() any { return new(rawBuf) }}

// release gives back the buffer targets took from rawBufs (nil: none),
// once p's result is read. The fast path leaves no value behind (see
// scanFast); the targets of a plan that is not fast, or of a row that fell
// back, point into the caller's memory and are dropped.
func (rb *rawBuf) release(p *plan) {
	if rb == nil {
		return
	}
	switch {
	case !p.fast || p.slow.Load():
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
	dst := make([]any, n) // kept for the whole result, not pooled
	p.skipTargets(dst)
	return &cursor{p: p, dst: dst, probes: make([]nullProbe, n), live: make([]bool, p.nested), used: make([]bool, n)}
}

// scanRow scans the current row into the zeroed element at base, using dst
// from [plan.targets] and c from [plan.newCursor].
func (p *plan) scanRow(rows Rows, base unsafe.Pointer, dst []any, c *cursor) error {
	if c != nil {
		return c.scanNested(rows, base)
	}
	if p.fast && !p.slow.Load() {
		// dst still holds the raw targets: once slow is set, it stays set.
		return p.scanFast(rows, base, dst)
	}
	if p.scalar {
		p.setTarget(&dst[0], p.ptrTyp, p.elem, base)
	} else {
		for i := range p.fields {
			f := &p.fields[i]
			if !f.skip {
				p.setTarget(&dst[i], f.ptrTyp, f.typ, unsafe.Add(base, f.offset))
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
func (c *cursor) scanNested(rows Rows, base unsafe.Pointer) error {
	p := c.p
	for i := range p.fields {
		f := &p.fields[i]
		switch {
		case f.skip:
		case f.node < 0:
			p.setTarget(&c.dst[i], f.ptrTyp, f.typ, unsafe.Add(base, f.offset))
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
			p.setTarget(&c.dst[i], f.ptrTyp, f.typ, fieldByIndexAlloc(root, f.index).Addr().UnsafePointer())
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
// conversions of our own (conv.go). A value it cannot convert exactly
// as database/sql would makes it scan the row again the ordinary way and
// turn the plan's fast path off.
func (p *plan) scanFast(rows Rows, base unsafe.Pointer, dst []any) error {
	// The raw values sit right after the targets, in the same buffer
	// (see targets): dst[i] points at raw[i], except for skipped columns.
	raw := dst[len(dst) : 2*len(dst)]
	if err := rows.Scan(dst...); err != nil {
		clear(raw) // keep no value alive in the pooled buffer
		return p.explain(rows, err, nil)
	}
	if p.scalar {
		ok := p.sconv.set(base, raw[0])
		raw[0] = nil
		if !ok {
			return p.fallBack(rows, base, dst, 0)
		}
		return nil
	}
	fields := p.fields[:len(raw)]
	for i := range fields {
		f := &fields[i]
		if f.skip {
			continue
		}
		var ok bool
		if f.conv.ptr {
			ok = f.conv.set(unsafe.Add(base, f.offset), raw[i])
		} else {
			ok = f.conv.setValue(unsafe.Add(base, f.offset), raw[i])
		}
		raw[i] = nil // keep no value alive past its row
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
func (p *plan) fallBack(rows Rows, base unsafe.Pointer, dst []any, from int) error {
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
			p.setTarget(&dst[i], f.ptrTyp, f.typ, fp)
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
