package conformance

import (
	"errors"
	"strings"
	"testing"
)

// fakeTB records what MissingServer does instead of ending the test.
type fakeTB struct {
	testing.TB
	fataled, skipped bool
	msg              string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, _ ...any) { f.fataled, f.msg = true, format }
func (f *fakeTB) Skipf(format string, _ ...any)  { f.skipped, f.msg = true, format }

// CI relies on this: with DBM_REQUIRE_INTEGRATION=1 a target whose server
// is missing fails the run instead of skipping it.
func TestMissingServerFailsInCI(t *testing.T) {
	t.Setenv(requireIntegration, "1")
	f := &fakeTB{TB: t}
	MissingServer(f, "MariaDB", errors.New("refused"))
	if !f.fataled || f.skipped {
		t.Errorf("with %s=1: fataled=%v skipped=%v, want a failure", requireIntegration, f.fataled, f.skipped)
	}
	t.Setenv(requireIntegration, "")
	f = &fakeTB{TB: t}
	MissingServer(f, "MariaDB", errors.New("refused"))
	if f.fataled || !f.skipped || !strings.Contains(f.msg, "SKIP") {
		t.Errorf("locally: fataled=%v skipped=%v msg=%q, want a visible skip", f.fataled, f.skipped, f.msg)
	}
}
