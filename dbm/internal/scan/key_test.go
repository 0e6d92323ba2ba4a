package scan

import (
	"reflect"
	"strings"
	"testing"
)

// TestTypeKeyIdentifiesTypes checks the plan cache's key: the same type
// reached different ways has one key, and different types (including two
// named types with the same layout) have different keys.
func TestTypeKeyIdentifiesTypes(t *testing.T) {
	type a struct{ X int }
	type b struct{ X int }
	if typeKey(reflect.TypeFor[a]()) != typeKey(reflect.TypeOf(a{})) {
		t.Error("one type, two keys")
	}
	if typeKey(reflect.TypeFor[*a]()) != typeKey(reflect.PointerTo(reflect.TypeFor[a]())) {
		t.Error("*a from TypeFor and from PointerTo: two keys")
	}
	if typeKey(reflect.TypeFor[a]()) == typeKey(reflect.TypeFor[b]()) {
		t.Error("a and b share a key")
	}
	s := &Scanner{}
	if s.plansOf(reflect.TypeFor[a]()) == s.plansOf(reflect.TypeFor[b]()) {
		t.Error("a and b share a plan list")
	}
	if s.plansOf(reflect.TypeFor[a]()) != s.plansOf(reflect.TypeOf(a{})) {
		t.Error("a got two plan lists")
	}
}

func TestSameColumns(t *testing.T) {
	a := []string{"id", "name"}
	cases := []struct {
		b    []string
		want bool
	}{
		{a, true},
		{[]string{strings.Clone("id"), strings.Clone("name")}, true}, // equal text elsewhere in memory
		{[]string{"id", "nama"}, false},                              // same lengths, other text
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
