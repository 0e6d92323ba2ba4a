package fpstack

import (
	"runtime"
	"testing"
)

//go:noinline
func viaFP(pcs []uintptr) int { return Callers(0, pcs) }

//go:noinline
func viaRuntime(pcs []uintptr) int { return runtime.Callers(2, pcs) }

//go:noinline
func both(a, b []uintptr) (int, int) { return viaFP(a), viaRuntime(b) }

// funcs returns the function names of pcs.
func funcs(pcs []uintptr) []string {
	var out []string
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		out = append(out, f.Function)
		if !more {
			return out
		}
	}
}

// TestCallersMatchesRuntime: the frames found by following frame pointers
// are the frames runtime.Callers finds.
func TestCallersMatchesRuntime(t *testing.T) {
	a, b := make([]uintptr, 4), make([]uintptr, 4)
	na, nb := both(a, b)
	if na != 4 || nb != 4 {
		t.Fatalf("got %d and %d PCs, want 4 each", na, nb)
	}
	fa, fb := funcs(a[:3]), funcs(b[:3])
	t.Logf("fp: %v\nruntime: %v", fa, fb)
	if len(fa) < 2 || fa[0] != fb[0] || fa[1] != fb[1] {
		t.Fatalf("frames differ:\nfp:      %v\nruntime: %v", fa, fb)
	}
	if want := "github.com/dbmanager-go/dbmanager/dbm/internal/fpstack.both"; fa[0] != want {
		t.Fatalf("first frame %q, want %q", fa[0], want)
	}
}

// TestCallersSkip: skip drops frames from the top.
func TestCallersSkip(t *testing.T) {
	var all, skipped [6]uintptr
	n := Callers(0, all[:])
	m := Callers(1, skipped[:])
	if n < 3 || m < 2 {
		t.Fatalf("got %d and %d PCs", n, m)
	}
	if got, want := funcs(skipped[:1])[0], funcs(all[1:2])[0]; got != want {
		t.Fatalf("skip 1 starts at %q, want %q", got, want)
	}
}

func BenchmarkCallers(b *testing.B) {
	var pcs [8]uintptr
	b.Run("impl=fp", func(b *testing.B) {
		for b.Loop() {
			Callers(0, pcs[:])
		}
	})
	b.Run("impl=runtime", func(b *testing.B) {
		for b.Loop() {
			runtime.Callers(2, pcs[:])
		}
	})
}
