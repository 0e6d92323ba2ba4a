package dbm_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// declaringErr is an error of a test double that states its class.
type declaringErr struct{ class dbm.Class }

func (e *declaringErr) Error() string       { return "double says " + e.class.String() }
func (e *declaringErr) DBMClass() dbm.Class { return e.class }

func TestDeclaredClassWins(t *testing.T) {
	// Wrapped, and with text that would otherwise read as a lost
	// connection.
	err := fmt.Errorf("invalid connection: %w", &declaringErr{dbm.ClassDeadlock})
	if got := dbm.Classify(err); got != dbm.ClassDeadlock {
		t.Errorf("Classify = %v, want the declared deadlock", got)
	}

	m, mock := newMock(t, "postgres")
	mock.ExpectBegin()
	mock.ExpectCommit().WillReturnError(&declaringErr{dbm.ClassUnknown})
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.Commit()
	var d *declaringErr
	if errors.Is(err, dbm.ErrCommitUnknown) || errors.Is(err, dbm.ErrConnection) || !errors.As(err, &d) || dbm.Classify(err) != dbm.ClassUnknown {
		t.Errorf("Commit = %v (class %v); a declared class at COMMIT is the answer, not commit_unknown", err, dbm.Classify(err))
	}

	mock.ExpectBegin()
	mock.ExpectCommit().WillReturnError(&declaringErr{dbm.ClassConnection})
	tx, err = m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, dbm.ErrCommitUnknown) {
		t.Errorf("Commit = %v; a declared connection loss at COMMIT leaves the outcome unknown", err)
	}
}
