// Package scan turns result rows into Go values for package dbm: the
// mapping of columns to struct fields, the per-type plan cache and the fast
// path that converts driver values straight into the caller's memory. It
// holds every use of unsafe in dbm.
//
// It reads rows through [Rows], the few methods of *sql.Rows it needs (as
// scany's dbscan.Rows does), and knows nothing of the manager: what a call
// needs (the name mapper, whether unknown columns are skipped) comes in
// through [Config] and the arguments. Its failures are an [*Error] or an
// [*ArgError], which dbm turns into its public ScanError and
// ArgumentError.
package scan

import (
	"database/sql"
	"maps"
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

// Config is what a [Scanner] is made with.
type Config struct {
	// NameMapper maps a field name to its column name when the field has no
	// db tag; nil is strings.ToLower.
	NameMapper func(field string) string
	// IgnoreUnknown skips result columns that have no destination field in
	// every call, instead of failing with [ErrUnknownColumn].
	IgnoreUnknown bool
}

// Scanner turns result rows into Go values. It keeps, per destination type,
// the plans computed for the column lists seen so far, so the reflection
// work of mapping columns to fields is done once. It is safe for
// concurrent use.
type Scanner struct {
	mapper        *reflectx.Mapper
	ignoreUnknown bool // Config.IgnoreUnknown

	// types maps a destination type to its plans. It is copied on write
	// (new types are rare) so that lookups are a plain map read. The key is
	// the type's identity, typeKey(t): a pointer key takes the map's fast
	// path, where hashing a reflect.Type interface does not.
	types atomic.Pointer[map[unsafe.Pointer]*typeInfo]
	mu    sync.Mutex // serialises writers of types

	// safe turns the fast path off: its plans use database/sql's
	// conversions, and build their scan targets with reflect instead of
	// from type words. Tests compare the two (see newSafe).
	safe bool
}

// New returns a Scanner with an empty cache.
func New(c Config) *Scanner {
	nm := c.NameMapper
	if nm == nil {
		nm = strings.ToLower
	}
	return &Scanner{mapper: reflectx.NewMapperFunc("db", nm), ignoreUnknown: c.IgnoreUnknown}
}

// lenient reports whether unknown columns are skipped for a call that asks
// for it itself (call) or not.
func (s *Scanner) lenient(call bool) bool { return call || s.ignoreUnknown }

// typeKey identifies t: the data word of the reflect.Type interface, the
// runtime's *rtype, which is unique per type (reflect compares types by it).
func typeKey(t reflect.Type) unsafe.Pointer {
	return (*eface)(unsafe.Pointer(&t)).data
}

// typeInfo is what the scanner knows about one type: the one cache entry
// per type, keyed by typeKey. For an element type it holds the plans; for
// the *[]E of an ExecuteQuery destination, the destination's facts.
type typeInfo struct {
	plans planList
	dest  atomic.Pointer[destFact]
}

// plansOf returns the plan list of elem, adding an empty one on a miss.
func (s *Scanner) plansOf(elem reflect.Type) *planList { return &s.info(typeKey(elem)).plans }

// info returns the cache entry of the type whose key is k, adding an empty
// one on a miss.
func (s *Scanner) info(k unsafe.Pointer) *typeInfo {
	if m := s.types.Load(); m != nil {
		if ti, ok := (*m)[k]; ok {
			return ti
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.types.Load()
	if old != nil {
		if ti, ok := (*old)[k]; ok {
			return ti
		}
	}
	next := make(map[unsafe.Pointer]*typeInfo, 1)
	if old != nil {
		maps.Copy(next, *old)
	}
	ti := &typeInfo{}
	next[k] = ti
	s.types.Store(&next)
	return ti
}

// maxPlansPerType bounds the plan cache for a type queried with many
// different column lists (e.g. generated SELECTs).
const maxPlansPerType = 32

type planList struct{ plans atomic.Pointer[[]*plan] }

// sameColumns is slices.Equal for column lists, quicker when the driver
// hands out the same strings every time (its names are constants, or it
// keeps them): equal pointers and lengths need no byte comparison.
func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	b = b[:len(a)] // no bounds check in the loop
	for i, x := range a {
		y := b[i]
		if len(x) != len(y) {
			return false
		}
		if unsafe.StringData(x) != unsafe.StringData(y) && !sameText(x, y) {
			return false
		}
	}
	return true
}

// sameText is x == y for sameColumns, out of its loop: the loop then
// keeps its values in registers instead of saving them around the
// comparison, which runs only for strings at different addresses.
//
//go:noinline
func sameText(x, y string) bool { return x == y }

// find returns the cached plan for (cols, lenient), or nil.
func (pl *planList) find(cols []string, lenient bool) *plan {
	if cur := pl.plans.Load(); cur != nil {
		for _, p := range *cur {
			if p.lenient == lenient && sameColumns(p.cols, cols) {
				return p
			}
		}
	}
	return nil
}

// plan maps each result column to where its value goes inside one element.
type plan struct {
	cols    []string
	elem    reflect.Type // the element type (struct or scalar)
	lenient bool         // unknown columns are skipped, not an error
	scalar  bool
	ptrTyp  unsafe.Pointer // scalar plans: the type word of the scan target of elem (see targetType)
	fields  []fieldPlan    // one per column, for structs
	nested  int            // how many pointers to structs the columns cross
	// fast: every column has a fast-path conversion (see conv.go):
	// sconv for a scalar plan, each field's conv otherwise. slow is set for
	// good once a row had to fall back to database/sql's conversions.
	fast  bool
	sconv fieldConv
	slow  atomic.Bool
	skips bool // some columns are skipped (their targets are discard)
	safe  bool // the scanner's safe: no fast path, targets built by reflect
}

type fieldPlan struct {
	name   string         // Type.Field, for errors
	typ    reflect.Type   // the field's type
	ptrTyp unsafe.Pointer // the type word of the scan target of typ (see targetType)
	offset uintptr        // from the element's start, when direct
	index  []int          // the reflect index path, when it crosses a pointer
	direct bool           // no pointer on the way: use offset
	skip   bool           // an unknown column, ignored (lenient plans)
	node   int            // the innermost pointer crossed (see nested), or -1
	parent []int          // for each pointer crossed, outermost first: its node
	conv   fieldConv      // the fast-path conversion (see conv.go)
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

// planFor returns the cached plan for (elem, cols, lenient), building it on
// a miss.
func (s *Scanner) planFor(elem reflect.Type, cols []string, lenient bool) (*plan, error) {
	return s.planIn(s.plansOf(elem), elem, cols, lenient)
}

// planIn is planFor with elem's plan list pl already looked up.
func (s *Scanner) planIn(pl *planList, elem reflect.Type, cols []string, lenient bool) (*plan, error) {
	if p := pl.find(cols, lenient); p != nil {
		return p, nil
	}
	p, err := s.buildPlan(elem, cols, lenient)
	if err != nil {
		return nil, err
	}
	for {
		cur := pl.plans.Load()
		var next []*plan
		if cur != nil {
			if q := pl.find(cols, lenient); q != nil {
				return q, nil // another caller stored it first: share theirs
			}
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

func (s *Scanner) buildPlan(elem reflect.Type, cols []string, lenient bool) (*plan, error) {
	p := &plan{cols: slices.Clone(cols), elem: elem, lenient: lenient, scalar: isScalar(elem), safe: s.safe}
	if p.scalar {
		if len(cols) != 1 {
			return nil, &ArgError{Func: "scan", Arg: "dest", Reason: "element type " + elem.String() +
				" takes exactly one column, the query returned " + strconv.Itoa(len(cols)) + " (" + strings.Join(cols, ", ") + ")"}
		}
		p.ptrTyp = targetTypeWord(elem)
		p.sconv = convFor(elem)
		p.fast = p.sconv.kind != convNone && !s.safe
		return p, nil
	}
	tm := s.mapper.TypeMap(elem)
	p.fields = make([]fieldPlan, len(cols))
	nodes := map[string]int{} // index path of a crossed pointer -> node
	for i, col := range cols {
		fi, ok := tm.Names[col]
		if !ok {
			fi, ok = tm.Names[strings.ToLower(col)]
		}
		if !ok || fi.Field.Type.Kind() == reflect.Struct && !isScalar(fi.Field.Type) && len(fi.Children) > 0 ||
			fi.Field.Type.Kind() == reflect.Pointer && fi.Field.Type.Elem().Kind() == reflect.Struct && !isScalar(fi.Field.Type.Elem()) && len(fi.Children) > 0 {
			if lenient {
				p.fields[i] = fieldPlan{skip: true, node: -1}
				p.skips = true
				continue
			}
			return nil, &Error{Column: col, Index: i, Dest: elem.String(), Err: ErrUnknownColumn, Unexported: unexportedMatch(elem, col)}
		}
		if j := overlapping(p.fields[:i], fi.Index); j >= 0 {
			return nil, duplicateColumn(cols, j, i, p.fields[j].name)
		}
		fp := fieldPlan{name: typeName(elem) + "." + fieldPathName(elem, fi.Index), typ: fi.Field.Type,
			ptrTyp: targetTypeWord(fi.Field.Type), index: fi.Index, direct: true, node: -1}
		t := elem
		for depth, idx := range fi.Index {
			f := t.Field(idx)
			fp.offset += f.Offset
			t = f.Type
			if depth < len(fi.Index)-1 && t.Kind() == reflect.Pointer {
				fp.direct = false
				key := fmtIndex(fi.Index[:depth+1])
				n, seen := nodes[key]
				if !seen {
					n = len(nodes)
					nodes[key] = n
				}
				fp.parent = append(fp.parent, n)
				fp.node = n
				t = t.Elem()
			}
		}
		fp.conv = convFor(fp.typ)
		p.fields[i] = fp
	}
	p.nested = len(nodes)
	p.fast = p.nested == 0 && !s.safe
	for i := range p.fields {
		if !p.fields[i].skip && p.fields[i].conv.kind == convNone {
			p.fast = false
		}
	}
	return p, nil
}

// overlapping returns the first of fields (the plans of the columns before
// this one) whose field is the one at index, or contains it, or lies inside
// it, or -1. Two such columns would write the same memory, the later one
// silently winning: SELECT o.id, u.id into struct{ Order; User } would put
// the user's id in Order.ID. It runs once per plan, never per row.
func overlapping(fields []fieldPlan, index []int) int {
	for j := range fields {
		f := &fields[j]
		if f.skip {
			continue
		}
		n := min(len(f.index), len(index))
		if slices.Equal(f.index[:n], index[:n]) {
			return j
		}
	}
	return -1
}

// duplicateColumn is the error for columns first and second of cols, which
// would both be stored in dest.
func duplicateColumn(cols []string, first, second int, dest string) error {
	return &Error{Column: cols[second], Index: second, Dest: dest, Err: ErrDuplicateColumn, Other: first, OtherColumn: cols[first]}
}

// typeName names t in errors: its name, or its literal for a type that has
// none (an anonymous struct such as struct{ Order; User }).
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// duplicateName returns the positions of the first name that cols holds
// twice, or -1, -1. A map[string]any row holds one value per name: the
// second would replace the first.
func duplicateName(cols []string) (first, second int) {
	if len(cols) <= 16 {
		for i := 1; i < len(cols); i++ {
			for j := range i {
				if cols[j] == cols[i] {
					return j, i
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, len(cols))
	for i, c := range cols {
		if j, ok := seen[c]; ok {
			return j, i
		}
		seen[c] = i
	}
	return -1, -1
}

// checkMapColumns rejects a result that a map[string]any cannot hold: a
// column name that appears twice.
func checkMapColumns(cols []string) error {
	if j, i := duplicateName(cols); j >= 0 {
		return duplicateColumn(cols, j, i, "map[string]any")
	}
	return nil
}

// unexportedMatch returns the name of an unexported field of struct t that
// col would match if it were exported (by its db tag, or its name ignoring
// case), or "". It explains an unknown column; the mapper skips such fields.
func unexportedMatch(t reflect.Type, col string) string {
	for _, f := range reflect.VisibleFields(t) {
		if f.IsExported() || f.Anonymous {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("db"), ",")
		if tag == col || tag == "" && strings.EqualFold(f.Name, col) {
			return f.Name
		}
	}
	return ""
}

func fmtIndex(index []int) string {
	var b strings.Builder
	for _, i := range index {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('.')
	}
	return b.String()
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

// fieldByIndexAlloc walks index from v, allocating nil pointers on the way.
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

// explain runs only after a failed Scan: it scans the row again (database/sql
// allows that) to find the column at fault, and reports NULL into a
// non-nullable destination as ErrNullValue. Only the columns for which used
// reports true (all, when used is nil) are examined.
func (p *plan) explain(rows Rows, scanErr error, used []bool) error {
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
		if used != nil && !used[i] || !p.scalar && p.fields[i].skip {
			continue
		}
		typ, dest := p.elem, p.elem.String()
		if !p.scalar {
			typ, dest = p.fields[i].typ, p.fields[i].name+" ("+p.fields[i].typ.String()+")"
		}
		if raw[i] == nil && !nullable(typ) {
			return &Error{Column: p.cols[i], Index: i, Dest: dest, Err: ErrNullValue}
		}
		try := slices.Clone(ptrs)
		try[i] = reflect.New(targetType(typ)).Interface()
		if err := rows.Scan(try...); err != nil {
			return &Error{Column: p.cols[i], Index: i, Dest: dest, Err: err}
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

// Mapper is the scanner's field mapper (db tags, else the name mapper), for
// code that must match fields as the scanner does.
func (s *Scanner) Mapper() *reflectx.Mapper { return s.mapper }
