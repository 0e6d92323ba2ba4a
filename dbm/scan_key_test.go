package dbm

import (
	"reflect"
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
	s := &scanner{}
	if s.plansOf(reflect.TypeFor[a]()) == s.plansOf(reflect.TypeFor[b]()) {
		t.Error("a and b share a plan list")
	}
	if s.plansOf(reflect.TypeFor[a]()) != s.plansOf(reflect.TypeOf(a{})) {
		t.Error("a got two plan lists")
	}
}
