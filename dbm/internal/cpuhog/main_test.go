package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStopsByItself: the hog spins, and stops by itself once -for has
// passed (so that an interrupted make stress does not leave it behind);
// a bad -for is refused.
func TestStopsByItself(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the hog; the full suite (make test) runs it")
	}
	bin := filepath.Join(t.TempDir(), "cpuhog")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-for", "300ms")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpuhog -for 300ms: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 30*time.Second {
		t.Errorf("cpuhog -for 300ms ran %v, want from 300ms to well under 30s", took)
	}
	if st := cmd.ProcessState; st.UserTime() <= 0 {
		t.Errorf("cpuhog used no CPU time (user %v): it does not spin", st.UserTime())
	}
	if err := exec.Command(bin, "-for", "-1s").Run(); err == nil {
		t.Error("cpuhog -for -1s: no error, want a refusal")
	}
	_ = os.Remove(bin)
}
