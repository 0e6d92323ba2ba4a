package dbm

import (
	"database/sql"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/jmoiron/sqlx/reflectx"
)

// scanner turns result rows into Go values. It keeps, per destination type,
// the plans computed for the column lists seen so far, so the reflection
// work of mapping columns to fields is done once.
type scanner struct {
	mapper *reflectx.Mapper
	plans  sync.Map // reflect.Type -> *planList
}

func newScanner(nameMapper func(string) string) *scanner {
	return &scanner{mapper: reflectx.NewMapperFunc("db", nameMapper)}
}

// maxPlansPerType bounds the plan cache for a type queried with many
// different column lists (e.g. generated SELECTs).
const maxPlansPerType = 32

type planList struct{ plans atomic.Pointer[[]*plan] }

// plan maps each result column to where its value goes inside one element.
type plan struct {
	cols   []string
	elem   reflect.Type // the element type (struct or scalar)
	scalar bool
	fields []fieldPlan // one per column, for structs
}

type fieldPlan struct {
	name   string       // Type.Field, for errors
	typ    reflect.Type // the field's type
	offset uintptr      // from the element's start, when direct
	index  []int        // the reflect index path, when it crosses a pointer
	direct bool         // no embedded pointer on the way: use offset
}

// isScalar reports whether values of t are scanned whole from one column
// rather than field by field: non-structs, time.Time and types that
// implement sql.Scanner.
func isScalar(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return true
	}
	return t == timeType || reflect.PointerTo(t).Implements(scannerType)
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	scannerType = reflect.TypeFor[sql.Scanner]()
)

// planFor returns the cached plan for (elem, cols), building it on a miss.
func (s *scanner) planFor(elem reflect.Type, cols []string) (*plan, error) {
	v, ok := s.plans.Load(elem)
	if !ok {
		v, _ = s.plans.LoadOrStore(elem, &planList{})
	}
	pl := v.(*planList)
	if cur := pl.plans.Load(); cur != nil {
		for _, p := range *cur {
			if slices.Equal(p.cols, cols) {
				return p, nil
			}
		}
	}
	p, err := s.buildPlan(elem, cols)
	if err != nil {
		return nil, err
	}
	for {
		cur := pl.plans.Load()
		var next []*plan
		if cur != nil {
			if len(*cur) >= maxPlansPerType {
				return p, nil
			}
			next = append(slices.Clip(*cur), p)
		} else {
			next = []*plan{p}
		}
		if pl.plans.CompareAndSwap(cur, &next) {
			return p, nil
		}
	}
}

func (s *scanner) buildPlan(elem reflect.Type, cols []string) (*plan, error) {
	p := &plan{cols: slices.Clone(cols), elem: elem, scalar: isScalar(elem)}
	if p.scalar {
		if len(cols) != 1 {
			return nil, &ArgumentError{Func: "scan", Arg: "dest", Reason: "element type " + elem.String() +
				" takes exactly one column, the query returned " + strconv.Itoa(len(cols)) + " (" + strings.Join(cols, ", ") + ")"}
		}
		return p, nil
	}
	tm := s.mapper.TypeMap(elem)
	p.fields = make([]fieldPlan, len(cols))
	for i, col := range cols {
		fi, ok := tm.Names[col]
		if !ok {
			fi, ok = tm.Names[strings.ToLower(col)]
		}
		if !ok || fi.Field.Type.Kind() == reflect.Struct && !isScalar(fi.Field.Type) && len(fi.Children) > 0 {
			return nil, &ScanError{Column: col, Index: i, Dest: elem.String(), Err: ErrUnknownColumn}
		}
		fp := fieldPlan{name: elem.Name() + "." + fieldPathName(elem, fi.Index), typ: fi.Field.Type, index: fi.Index, direct: true}
		t := elem
		for depth, idx := range fi.Index {
			f := t.Field(idx)
			fp.offset += f.Offset
			t = f.Type
			if depth < len(fi.Index)-1 && t.Kind() == reflect.Pointer {
				fp.direct = false
				t = t.Elem()
			}
		}
		p.fields[i] = fp
	}
	return p, nil
}

func fieldPathName(t reflect.Type, index []int) string {
	names := make([]string, 0, len(index))
	for _, idx := range index {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		f := t.Field(idx)
		names = append(names, f.Name)
		t = f.Type
	}
	return strings.Join(names, ".")
}

// targets fills dst with pointers into the element at base for each column.
func (p *plan) targets(base unsafe.Pointer, dst []any) {
	if p.scalar {
		dst[0] = reflect.NewAt(p.elem, base).Interface()
		return
	}
	var root reflect.Value
	for i := range p.fields {
		f := &p.fields[i]
		if f.direct {
			dst[i] = reflect.NewAt(f.typ, unsafe.Add(base, f.offset)).Interface()
			continue
		}
		if !root.IsValid() {
			root = reflect.NewAt(p.elem, base).Elem()
		}
		dst[i] = fieldByIndexAlloc(root, f.index).Addr().Interface()
	}
}

// fieldByIndexAlloc walks index from v, allocating nil embedded pointers.
// An embedded pointer to an unexported struct type cannot be set through
// reflect, so every step is re-derived from its address: v is always
// addressable (it lives in the destination the caller passed).
func fieldByIndexAlloc(v reflect.Value, index []int) reflect.Value {
	for i, idx := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem().Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		f := v.Field(idx)
		v = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	}
	return v
}

// scanRow scans the current row into the element at base and explains a
// failure in terms of the column and the destination field.
func (p *plan) scanRow(rows *sql.Rows, base unsafe.Pointer, dst []any) error {
	p.targets(base, dst)
	if err := rows.Scan(dst...); err != nil {
		return p.explain(rows, err)
	}
	return nil
}

// explain runs only after a failed Scan: it scans the row again (database/sql
// allows that) to find the column at fault, and reports NULL into a
// non-nullable destination as ErrNullValue.
func (p *plan) explain(rows *sql.Rows, scanErr error) error {
	n := len(p.cols)
	raw := make([]any, n)
	ptrs := make([]any, n)
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if rows.Scan(ptrs...) != nil {
		return scanErr // not a conversion problem; keep database/sql's error
	}
	for i := range n {
		typ, dest := p.elem, p.elem.String()
		if !p.scalar {
			typ, dest = p.fields[i].typ, p.fields[i].name+" ("+p.fields[i].typ.String()+")"
		}
		if raw[i] == nil && !nullable(typ) {
			return &ScanError{Column: p.cols[i], Index: i, Dest: dest, Err: ErrNullValue}
		}
		try := slices.Clone(ptrs)
		try[i] = reflect.New(typ).Interface()
		if err := rows.Scan(try...); err != nil {
			return &ScanError{Column: p.cols[i], Index: i, Dest: dest, Err: err}
		}
	}
	return scanErr
}

// nullable reports whether database/sql can store NULL into a *t.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	}
	return reflect.PointerTo(t).Implements(scannerType)
}
