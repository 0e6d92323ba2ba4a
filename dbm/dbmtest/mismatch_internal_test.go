package dbmtest

import (
	"errors"
	"fmt"
	"testing"
)

type countingT struct{ n int }

func (c *countingT) Errorf(string, ...any) { c.n++ }

// TestReporterQuietAfterTheTest: once the cleanup began, a mismatch (say a
// rollback database/sql runs in the background for a canceled context) is
// still returned as a *MismatchError but no longer reported through t,
// which panics after the test has completed.
func TestReporterQuietAfterTheTest(t *testing.T) {
	ct := &countingT{}
	r := &reporter{t: ct}
	sqlmockErr := fmt.Errorf("all expectations were already fulfilled, call to Rollback transaction was not expected")
	var me *MismatchError
	if err := r.check(sqlmockErr, "Rollback", "", nil); !errors.As(err, &me) || ct.n != 1 {
		t.Fatalf("during the test: err %v, %d reports; want a *MismatchError, reported once", err, ct.n)
	}
	r.end()
	if err := r.check(sqlmockErr, "Rollback", "", nil); !errors.As(err, &me) || ct.n != 1 {
		t.Errorf("after the test: err %v, %d reports; want a *MismatchError and no report", err, ct.n)
	}
	if err := r.check(errors.New("boom"), "Rollback", "", nil); err == nil || errors.As(err, &me) {
		t.Errorf("a scripted error became %v", err)
	}
}
