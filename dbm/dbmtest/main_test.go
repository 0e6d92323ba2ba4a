package dbmtest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT is a testing.TB that records failures instead of failing the real
// test, and runs its cleanups when told to. Anything it does not override
// panics (the embedded TB is nil), so a helper cannot call past it unseen.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	fatal    bool
	cleanups []func()
	onHelper func() // called once, when the helper under test starts
}

func (f *fakeT) Helper() {
	if f.onHelper != nil {
		f.onHelper()
		f.onHelper = nil
	}
}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Error(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprint(args...))
}
func (f *fakeT) Errorf(format string, a ...any) { f.Error(fmt.Sprintf(format, a...)) }
func (f *fakeT) Fatalf(format string, a ...any) {
	f.Error(fmt.Sprintf(format, a...))
	f.fatal = true
}

// report returns what failed so far, before the cleanups run.
func (f *fakeT) report() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errs, "\n")
}

// end runs the cleanups as the testing package does when a test ends, and
// returns what failed.
func (f *fakeT) end() string {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errs, "\n")
}
