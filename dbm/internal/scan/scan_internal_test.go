package scan

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// TestEfaceLayout checks the interface layout that setTarget relies on: an
// any built from a type word and a pointer must be the same value reflect
// builds.
func TestEfaceLayout(t *testing.T) {
	type row struct {
		A int64
		B string
	}
	var r row
	for _, c := range []struct {
		typ reflect.Type
		p   unsafe.Pointer
		// want is built the ordinary way
		want any
	}{
		{reflect.TypeFor[int64](), unsafe.Pointer(&r.A), &r.A},
		{reflect.TypeFor[string](), unsafe.Pointer(&r.B), &r.B},
		{reflect.TypeFor[row](), unsafe.Pointer(&r), &r},
	} {
		var got any
		setTarget(&got, ptrTypeWord(c.typ), c.p)
		if got != c.want || reflect.TypeOf(got) != reflect.PointerTo(c.typ) {
			t.Errorf("setTarget(%v) = %T %p, want %T %p", c.typ, got, got, c.want, c.want)
		}
	}
	var got any
	setTarget(&got, ptrTypeWord(reflect.TypeFor[string]()), unsafe.Pointer(&r.B))
	*got.(*string) = "through the built value"
	if r.B != "through the built value" {
		t.Errorf("write through the target did not reach the field")
	}
}

// TestPlanForSharesOnePlan: concurrent callers with the same shape all get
// the one cached plan, including those that raced to build it.
func TestPlanForSharesOnePlan(t *testing.T) {
	type user struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	s := New(Config{})
	cols := []string{"id", "name"}
	const n = 16
	got := make([]*plan, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := s.planFor(reflect.TypeFor[user](), strings.Fields("id name"), false)
			if err != nil {
				t.Error(err)
			}
			got[i] = p
		})
	}
	close(start)
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("caller %d got plan %p, caller 0 got %p", i, got[i], got[0])
		}
	}
	if p, _ := s.planFor(reflect.TypeFor[user](), cols, false); p != got[0] {
		t.Error("a later call built a new plan")
	}
	if p, _ := s.planFor(reflect.TypeFor[user](), cols, true); p == got[0] || !p.lenient {
		t.Error("a lenient call got the strict plan")
	}
}
