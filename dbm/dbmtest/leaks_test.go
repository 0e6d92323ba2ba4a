package dbmtest_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmtest"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records what a test helper reports instead of failing the test.
type fakeTB struct {
	testing.TB // nil: calling anything not overridden panics
	mu         sync.Mutex
	errors     []string
	onHelper   func() // called when the helper under test starts
}

func (f *fakeTB) Helper() {
	if f.onHelper != nil {
		f.onHelper()
		f.onHelper = nil
	}
}
func (f *fakeTB) Error(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprint(args...))
}
func (f *fakeTB) Errorf(format string, args ...any) { f.Error(fmt.Sprintf(format, args...)) }

func newMem(t *testing.T) *dbm.Manager {
	db, err := sql.Open(memdriver.Name, "1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, "mem")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestVerifyNoLeaksFailsALeakingTest(t *testing.T) {
	m := newMem(t)
	rows, err := m.Query(context.Background(), "SELECT leaked")
	_, _, line, _ := runtime.Caller(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	f := &fakeTB{}
	dbmtest.VerifyNoLeaks(f, m)
	want := fmt.Sprintf(`rows "SELECT leaked" opened at leaks_test.go:%d`, line-1)
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], want) {
		t.Fatalf("VerifyNoLeaks reported %q, want one error containing %q", f.errors, want)
	}
}

func TestVerifyNoLeaksPassesAndWaits(t *testing.T) {
	m := newMem(t)
	f := &fakeTB{}
	dbmtest.VerifyNoLeaks(f, m)
	if len(f.errors) != 0 {
		t.Fatalf("nothing open, yet VerifyNoLeaks reported %q", f.errors)
	}

	// A transaction that another goroutine ends during the grace period is
	// not reported: the goroutine starts only once VerifyNoLeaks has begun.
	tx, err := m.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-release
		_ = tx.Rollback()
	}()
	f = &fakeTB{onHelper: func() { close(release) }}
	dbmtest.VerifyNoLeaks(f, m)
	<-done
	if len(f.errors) != 0 {
		t.Fatalf("a transaction ended during the grace period was reported: %q", f.errors)
	}
	dbmtest.VerifyNoLeaks(t, m)
}

func TestVerifyNoLeaksNilManager(t *testing.T) {
	f := &fakeTB{}
	dbmtest.VerifyNoLeaks(f, nil)
	if len(f.errors) != 1 {
		t.Fatalf("nil manager: reported %q, want one error", f.errors)
	}
}
