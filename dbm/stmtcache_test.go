package dbm

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// fresh returns a copy of s at an address of its own, as text built for
// each call is.
func fresh(s string) string { return strings.Clone(s) }

func TestStmtCacheAnswers(t *testing.T) {
	var c stmtCache
	cases := []struct {
		text     string
		numbered bool
		sent     string
		read     bool
	}{
		{"SELECT a FROM t WHERE id = ?;", true, "SELECT a FROM t WHERE id = $1", true},
		{"SELECT a FROM t WHERE id = ?;", false, "SELECT a FROM t WHERE id = ?", true},
		{"DELETE FROM t WHERE id = ?", true, "DELETE FROM t WHERE id = $1", false},
		{"INSERT INTO t VALUES (1) RETURNING id", false, "INSERT INTO t VALUES (1) RETURNING id", false},
	}
	for _, tc := range cases {
		for i := range 3 { // miss, miss that caches, hit
			c := &c
			if tc.numbered != cases[0].numbered {
				c = &stmtCache{} // one cache per manager, and managers have one driver
			}
			st := c.lookup(tc.text, tc.numbered, false)
			if st.sent != tc.sent || st.read != tc.read {
				t.Fatalf("lookup %d of %q = (%q, %v), want (%q, %v)", i, tc.text, st.sent, st.read, tc.sent, tc.read)
			}
		}
	}
}

// A constant statement is cached from its second use; the same text at a
// new address every time (built per call) never is, and never allocates.
func TestStmtCacheKeepsOnlyRepeatedAddresses(t *testing.T) {
	var c stmtCache
	const q = "SELECT id FROM users WHERE email = $1"
	if st := c.lookup(q, true, false); st.plan != nil {
		t.Fatal("first sight of a statement cached it")
	}
	if st := c.lookup(q, true, false); st.plan == nil {
		t.Fatal("second sight of a constant statement did not cache it")
	}
	texts := make([]string, 200)
	for i := range texts {
		texts[i] = fresh("SELECT id FROM users WHERE name = $1")
	}
	c.lookup(texts[0], true, false) // IsRead's own cache learns the text
	i := 1
	allocs := testing.AllocsPerRun(100, func() {
		if st := c.lookup(texts[i], true, false); st.plan != nil || !st.read {
			t.Fatalf("one-off text: plan %v, read %v", st.plan, st.read)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("a one-off statement cost %v allocations, want 0", allocs)
	}
}

// Two statements that share a slot never answer for each other, whatever
// order they come in.
func TestStmtCacheSlotCollisions(t *testing.T) {
	var c stmtCache
	// Statements of equal length at offsets of one buffer, until four
	// reads and four writes share one slot.
	const read, write = "SELECT a FROM t", "UPDATE t SET a1"
	buf := make([]byte, 1<<16)
	bySlot := map[int][]int{}
	var texts []string
	for off := 0; off+len(read) <= len(buf) && texts == nil; off += 16 {
		slot, _ := stmtSlot(unsafe.String(&buf[off], len(read)))
		bySlot[slot] = append(bySlot[slot], off)
		if offs := bySlot[slot]; len(offs) == 8 {
			for i, o := range offs {
				q := read
				if i%2 == 1 {
					q = write
				}
				copy(buf[o:], q)
				texts = append(texts, unsafe.String(&buf[o], len(q)))
			}
		}
	}
	if texts == nil {
		t.Fatal("no slot shared by 8 offsets")
	}
	first, _ := stmtSlot(texts[0])
	for _, q := range texts {
		if s, _ := stmtSlot(q); s != first {
			t.Fatalf("slot of %q moved", q)
		}
	}
	for round := range 3 {
		for i, q := range texts {
			want := i%2 == 0
			for range round + 1 { // from round 1 on, each settles in the slot
				if st := c.lookup(q, false, false); st.read != want || st.sent != q {
					t.Fatalf("round %d: lookup(%q) = (%q, read %v), want read %v", round, q, st.sent, st.read, want)
				}
			}
		}
	}
}

// isScalar's cache gives the same answer as asking reflect, for more
// struct types than it has slots.
func TestIsScalarCacheAgreesWithReflect(t *testing.T) {
	var types []reflect.Type
	for i := range 300 {
		types = append(types, reflect.StructOf([]reflect.StructField{
			{Name: "F" + strings.Repeat("x", i%7), Type: reflect.TypeFor[int](), Tag: reflect.StructTag(`db:"f` + strings.Repeat("y", i) + `"`)},
		}))
	}
	types = append(types, timeType, reflect.TypeFor[struct{ A int }](),
		reflect.TypeFor[interface{ Scan(any) error }](), reflect.TypeFor[nullProbe]())
	for range 3 {
		for _, typ := range types {
			want := typ.Kind() != reflect.Struct || typ == timeType || reflect.PointerTo(typ).Implements(scannerType)
			if got := isScalar(typ); got != want {
				t.Fatalf("isScalar(%v) = %v, want %v", typ, got, want)
			}
		}
	}
}

func TestSameColumns(t *testing.T) {
	a := []string{"id", "name"}
	cases := []struct {
		b    []string
		want bool
	}{
		{a, true},
		{[]string{fresh("id"), fresh("name")}, true}, // equal text elsewhere in memory
		{[]string{"id", "nama"}, false},              // same lengths, other text
		{[]string{"name", "id"}, false},
		{[]string{"id"}, false},
		{[]string{"id", "name", "x"}, false},
	}
	for _, tc := range cases {
		if got := sameColumns(a, tc.b); got != tc.want {
			t.Errorf("sameColumns(%q, %q) = %v, want %v", a, tc.b, got, tc.want)
		}
	}
}
