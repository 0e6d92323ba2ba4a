package dbmtest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

func TestDifferentStatementFails(t *testing.T) {
	ft := &fakeT{}
	m, mock := dbmtest.NewMock(ft)
	mock.ExpectExec("DELETE FROM users WHERE id = ?").WillReturnResult(sqlmock.NewResult(0, 1))
	_, err := m.Exec(context.Background(), "DELETE FROM user WHERE id = ?", 1)
	if err == nil || !strings.Contains(err.Error(), "not expected") {
		t.Errorf("err = %v, want a mismatch", err)
	}
	if got := ft.end(); !strings.Contains(got, "remaining expectation") || !strings.Contains(got, "DELETE FROM users WHERE id = ?") {
		t.Errorf("cleanup reported %q, want the unmet expectation", got)
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
