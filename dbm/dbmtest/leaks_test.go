package dbmtest_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmtest"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

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
	f := &fakeT{}
	dbmtest.VerifyNoLeaks(f, m)
	want := fmt.Sprintf(`rows "SELECT leaked" opened at leaks_test.go:%d`, line-1)
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], want) {
		t.Fatalf("VerifyNoLeaks reported %q, want one error containing %q", f.errs, want)
	}
}

func TestVerifyNoLeaksPassesAndWaits(t *testing.T) {
	m := newMem(t)
	f := &fakeT{}
	dbmtest.VerifyNoLeaks(f, m)
	if len(f.errs) != 0 {
		t.Fatalf("nothing open, yet VerifyNoLeaks reported %q", f.errs)
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
	f = &fakeT{onHelper: func() { close(release) }}
	dbmtest.VerifyNoLeaks(f, m)
	<-done
	if len(f.errs) != 0 {
		t.Fatalf("a transaction ended during the grace period was reported: %q", f.errs)
	}
	dbmtest.VerifyNoLeaks(t, m)
}

func TestVerifyNoLeaksNilManager(t *testing.T) {
	f := &fakeT{}
	dbmtest.VerifyNoLeaks(f, nil)
	if len(f.errs) != 1 {
		t.Fatalf("nil manager: reported %q, want one error", f.errs)
	}
}
