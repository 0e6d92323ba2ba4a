package dbmtest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmtest"
)

func TestMetExpectationsPass(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectExec("UPDATE users SET active = ? WHERE id = ?").WithArgs(false, 3).WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(context.Background(), "UPDATE users SET active = ? WHERE id = ?", false, 3); err != nil {
		t.Fatal(err)
	}
	if got := ft.end(); got != "" {
		t.Errorf("a test that met its expectations failed: %s", got)
	}
}

func TestUnmetExpectationFails(t *testing.T) {
	ft := &fakeT{}
	_, mock := dbmtest.NewMock(ft)
	mock.ExpectQuery("SELECT id FROM users")
	got := ft.end()
	if !strings.Contains(got, "dbmtest:") || !strings.Contains(got, "SELECT id FROM users") {
		t.Errorf("cleanup reported %q, want the unmet expectation", got)
	}
}

func TestWhitespaceDoesNotMatter(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectQuery(`
		SELECT id, email
		  FROM users
		 WHERE email = ?;`).WithArgs("ada@example.com").
		WillReturnRows(sqlmock.NewRows([]string{"id", "email"}).AddRow(1, "ada@example.com"))
	var ids []int
	err := m.ExecuteQuery(context.Background(), &ids, "SELECT id,\temail FROM users WHERE email = ?", "ada@example.com")
	// The statement scans two columns into []int: the scan fails, the match
	// did not.
	if err == nil || strings.Contains(err.Error(), "not expected") {
		t.Fatalf("err = %v; want the scan error after a match", err)
	}
	if got := ft.end(); got != "" {
		t.Errorf("the white-space variant did not match: %s", got)
	}
}

// TestDifferentStatementFails: the test fails at the call, naming both
// statements in the same form (as sent, with $1), and the code under test
// gets a *MismatchError, not a database failure.
func TestDifferentStatementFails(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectExec("DELETE FROM users WHERE id = ?").WillReturnResult(sqlmock.NewResult(0, 1))
	_, err := m.Exec(context.Background(), "DELETE FROM user WHERE id = ?", 1)
	var me *dbmtest.MismatchError
	if !errors.As(err, &me) || me.Call != "Exec" || dbm.Classify(err) != dbm.ClassUnknown || dbm.IsRetryable(err) {
		t.Errorf("err = %v (class %v), want an unretryable *MismatchError for Exec", err, dbm.Classify(err))
	}
	reported := ft.report()
	for _, want := range []string{`got:      Exec "DELETE FROM user WHERE id = $1" with args [1]`, `expected: statement "DELETE FROM users WHERE id = $1"`} {
		if !strings.Contains(reported, want) {
			t.Errorf("the test failed with %q; want it to contain %q", reported, want)
		}
	}
	if strings.Contains(reported, "?") {
		t.Errorf("the report mixes placeholder styles: %q", reported)
	}
	if got := ft.end(); !strings.Contains(got, "remaining expectation") || !strings.Contains(got, "DELETE FROM users WHERE id = $1") {
		t.Errorf("cleanup reported %q, want the unmet expectation", got)
	}
}

// TestForgottenExpectCommit is the reproduction: a missing
// ExpectCommit failed nothing unless the code checked the error, and the
// error said commit_unknown (a lost connection).
func TestForgottenExpectCommit(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectBegin()
	mock.ExpectExec("UPDATE users SET active = ? WHERE id = ?").WithArgs(false, 3).WillReturnResult(sqlmock.NewResult(0, 1))
	runs := 0
	err := m.WithTx(context.Background(), nil, func(ctx context.Context, tx *dbm.Tx) error {
		runs++
		_, err := tx.Exec(ctx, "UPDATE users SET active = ? WHERE id = ?", false, 3)
		return err
	})
	if reported := ft.report(); !strings.Contains(reported, "got:      Commit") || !strings.Contains(reported, "expected: no more calls") {
		t.Errorf("the test failed with %q; want the unexpected Commit named at once", reported)
	}
	var me *dbmtest.MismatchError
	if !errors.As(err, &me) || me.Call != "Commit" {
		t.Errorf("err = %v, want a *MismatchError for Commit", err)
	}
	for _, wrong := range []error{dbm.ErrCommitUnknown, dbm.ErrOutcomeUnknown, dbm.ErrConnection} {
		if errors.Is(err, wrong) {
			t.Errorf("err = %v matches %v: a mock mismatch is no connection or commit-outcome failure", err, wrong)
		}
	}
	if strings.Contains(err.Error(), "commit_unknown") || runs != 1 {
		t.Errorf("err = %v after %d runs", err, runs)
	}
	if sqlErr := errors.Unwrap(me); sqlErr == nil || !strings.Contains(sqlErr.Error(), "call to Commit transaction was not expected") {
		t.Errorf("go-sqlmock's error is not reachable: %v", sqlErr)
	}
	ft.end()
}

// TestMismatchedArgumentsAndCallsFail covers the other kinds of mismatch.
func TestMismatchedArgumentsAndCallsFail(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		expect func(sqlmock.Sqlmock)
		call   func(*dbm.Manager) error
		want   []string
	}{
		{"arguments", func(mock sqlmock.Sqlmock) {
			mock.ExpectQuery("SELECT id FROM users WHERE id = ?").WithArgs(1).WillReturnRows(sqlmock.NewRows([]string{"id"}))
		}, func(m *dbm.Manager) error {
			var ids []int
			return m.ExecuteQuery(ctx, &ids, "SELECT id FROM users WHERE id = ?", 2)
		},
			[]string{`got:      Query "SELECT id FROM users WHERE id = $1" with args [2]`, "expected: the same statement with other arguments", "[int64 - 1]"}},
		{"out of order", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
		}, func(m *dbm.Manager) error { _, err := m.Exec(ctx, "DELETE FROM users WHERE id = ?", 7); return err },
			[]string{`got:      Exec "DELETE FROM users WHERE id = $1" with args [7]`, "expected: ExpectedBegin"}},
		{"after all were met", func(sqlmock.Sqlmock) {},
			func(m *dbm.Manager) error { _, err := m.BeginTx(ctx, nil); return err },
			[]string{"got:      Begin", "expected: no more calls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{}
			m, mock := dbmtest.NewMock(ft)
			tc.expect(mock)
			err := tc.call(m)
			var me *dbmtest.MismatchError
			if !errors.As(err, &me) || dbm.Classify(err) != dbm.ClassUnknown {
				t.Errorf("err = %v, want a *MismatchError of no class", err)
			}
			reported := ft.report()
			for _, want := range tc.want {
				if !strings.Contains(reported, want) {
					t.Errorf("the test failed with %q; want it to contain %q", reported, want)
				}
			}
			ft.end()
		})
	}
}

// TestScriptedErrorsAreNotMismatches: an error the test asks for with
// WillReturnError reaches the code as given and fails nothing, even a plain
// errors.New one.
func TestScriptedErrorsAreNotMismatches(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	boom := errors.New("boom: call was not expected by the payment service")
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(boom)
	mock.ExpectBegin()
	mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)
	if _, err := m.Exec(context.Background(), "UPDATE t SET n = 1"); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the scripted error", err)
	}
	err := m.WithTx(context.Background(), nil, func(context.Context, *dbm.Tx) error { return nil })
	if !errors.Is(err, dbm.ErrCommitUnknown) {
		t.Errorf("err = %v, want ErrCommitUnknown for a scripted lost COMMIT reply", err)
	}
	if got := ft.end(); got != "" {
		t.Errorf("scripted errors failed the test: %s", got)
	}
}

func TestRowsLeftOpenFail(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectQuery("SELECT 1").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
	rows, err := m.Query(context.Background(), "SELECT 1")
	_, _, line, _ := runtime.Caller(0)
	if err != nil {
		t.Fatal(err)
	}
	got := ft.end()
	_ = rows.Close()
	if want := fmt.Sprintf(`rows "SELECT 1" opened at mock_test.go:%d`, line-1); !strings.Contains(got, want) {
		t.Errorf("cleanup reported %q, want the open rows", got)
	}
}

func TestTransactionLeftOpenFails(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectBegin()
	tx, err := m.BeginTx(context.Background(), nil)
	_, _, line, _ := runtime.Caller(0)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if got, want := ft.end(), fmt.Sprintf("tx opened at mock_test.go:%d", line-1); !strings.Contains(got, want) {
		t.Errorf("cleanup reported %q, want the open transaction", got)
	}
}

func TestRegexpMatchingOption(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft, dbmtest.WithRegexpMatching())
	mock.ExpectQuery(`SELECT .* FROM users WHERE id = \$1`).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("ada"))
	name, err := dbm.One[string](context.Background(), m, "SELECT name FROM users WHERE id = ?", 1)
	if err != nil || name != "ada" {
		t.Errorf("One = %q, %v", name, err)
	}
	if got := ft.end(); got != "" {
		t.Errorf("regexp expectation failed: %s", got)
	}
}

func TestDriverOption(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft, dbmtest.WithDriver("mysql"))
	// MySQL keeps '?': the statement is sent as written, and a $1
	// expectation no longer matches it.
	mock.ExpectExec("DELETE FROM users WHERE id = $1")
	_, err := m.Exec(context.Background(), "DELETE FROM users WHERE id = ?", 1)
	if err == nil || !strings.Contains(err.Error(), `"DELETE FROM users WHERE id = ?"`) {
		t.Errorf("err = %v, want the statement sent with '?'", err)
	}
	ft.end()

	// And mysql error numbers are classified.
	ft = &fakeT{}
	m, mock = dbmtest.NewMock(ft, dbmtest.WithDriver("mysql"))
	mock.ExpectExec("DELETE FROM users WHERE id = ?").WillReturnError(errors.New("boom"))
	if _, err := m.Exec(context.Background(), "DELETE FROM users WHERE id = ?", 1); err == nil {
		t.Error("want the mock's error")
	}
	if got := ft.end(); got != "" {
		t.Errorf("failed: %s", got)
	}
}

func TestManagerOptionsArePassed(t *testing.T) {
	ft := &fakeT{}
	var seen []string
	m, mock := dbmtest.NewMock(ft, dbmtest.WithManagerOptions(dbm.WithNameMapper(func(f string) string {
		seen = append(seen, f)
		return strings.ToUpper(f)
	})))
	type row struct{ Name string }
	mock.ExpectQuery("SELECT 1").WillReturnRows(sqlmock.NewRows([]string{"NAME"}).AddRow("ada"))
	r, err := dbm.One[row](context.Background(), m, "SELECT 1")
	if err != nil || r.Name != "ada" || len(seen) == 0 {
		t.Errorf("One = %+v, %v; mapper saw %v", r, err, seen)
	}
	if got := ft.end(); got != "" {
		t.Errorf("failed: %s", got)
	}
}

// TestScriptedErrorsAreClassified backs docs/testing.md's tips: scripted
// driver errors match the sentinels they would match in production.
func TestScriptedErrorsAreClassified(t *testing.T) {
	ctx := context.Background()
	m, mock := dbmtest.NewMock(t)
	mock.ExpectExec("INSERT INTO users (email) VALUES (?)").WillReturnError(&pq.Error{Code: "23505"})
	if _, err := m.Exec(ctx, "INSERT INTO users (email) VALUES (?)", "ada@example.com"); !errors.Is(err, dbm.ErrUniqueViolation) {
		t.Errorf("pq 23505: %v, want ErrUniqueViolation", err)
	}
	mock.ExpectQuery("SELECT id FROM users").WillReturnError(sql.ErrNoRows)
	if _, err := dbm.One[int](ctx, m, "SELECT id FROM users"); !errors.Is(err, dbm.ErrNotFound) {
		t.Errorf("sql.ErrNoRows: %v, want ErrNotFound", err)
	}
	mock.ExpectQuery("SELECT id FROM users").WillReturnRows(sqlmock.NewRows([]string{"id"}))
	if _, err := dbm.One[int](ctx, m, "SELECT id FROM users"); !errors.Is(err, dbm.ErrNotFound) {
		t.Errorf("no rows: %v, want ErrNotFound", err)
	}
}

// A manager option with an invalid value fails the test at NewMock with
// Wrap's error, which names the option, rather than a mock that silently
// ignores it.
func TestNewMockReportsAnInvalidManagerOption(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft, dbmtest.WithManagerOptions(dbm.WithLeakThreshold(-time.Second)))
	if m != nil || mock != nil {
		t.Error("NewMock returned a manager and a mock along with its failure")
	}
	got := ft.end()
	if !ft.fatal || !strings.Contains(got, "dbmtest:") || !strings.Contains(got, "WithLeakThreshold") || !strings.Contains(got, "negative") {
		t.Errorf("NewMock reported %q (fatal %v), want a fatal error naming WithLeakThreshold", got, ft.fatal)
	}
}
