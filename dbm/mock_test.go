package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// newMock returns a manager over go-sqlmock with exact query matching. The
// test fails if an expectation is left unmet.
func newMock(t *testing.T, driverName string) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, driverName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("sqlmock: %v", err)
		}
		_ = m.Close()
	})
	return m, mock
}

type Audit struct {
	CreatedBy string    `db:"created_by"`
	CreatedAt time.Time `db:"created_at"`
}

type Account struct {
	ID       int64          `db:"id"`
	Name     string         // no tag: matched as "name"
	Nick     *string        `db:"nick"`
	Note     sql.NullString `db:"note"`
	secret   string         //lint:ignore U1000 unexported fields must be ignored by the scanner
	Audit                   // embedded: its fields are columns too
	Ignored  string         `db:"-"`
	Balance  float64        `db:"balance"`
	Verified bool           `db:"verified"`
}

var accountCols = []string{"id", "name", "nick", "note", "created_by", "created_at", "balance", "verified"}

func TestExecuteQueryIntoStructs(t *testing.T) {
	m, mock := newMock(t, "postgres")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mock.ExpectQuery("SELECT * FROM accounts WHERE balance > $1 AND verified = $2").
		WithArgs(10, true).
		WillReturnRows(sqlmock.NewRows(accountCols).
			AddRow(1, "ada", "countess", "first", "root", at, 12.5, true).
			AddRow(2, "alan", nil, nil, "root", at, 99.0, true))

	var got []Account
	err := m.ExecuteQuery(context.Background(), &got, "SELECT * FROM accounts WHERE balance > ? AND verified = ?;", 10, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d rows, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.ID != 1 || a.Name != "ada" || a.Nick == nil || *a.Nick != "countess" || a.Note.String != "first" ||
		a.CreatedBy != "root" || !a.CreatedAt.Equal(at) || a.Balance != 12.5 || !a.Verified {
		t.Errorf("row 1 = %+v", a)
	}
	if b.Nick != nil || b.Note.Valid || b.Name != "alan" {
		t.Errorf("row 2 NULLs not preserved: %+v", b)
	}
}

func TestExecuteQueryReplacesDestination(t *testing.T) {
	m, mock := newMock(t, "postgres")
	mock.ExpectQuery("SELECT id, name FROM accounts").WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(7, "new"))
	got := []Account{{ID: 1, Name: "stale", Balance: 5}, {ID: 2}}
	if err := m.ExecuteQuery(context.Background(), &got, "SELECT id, name FROM accounts"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != 7 || got[0].Name != "new" || got[0].Balance != 0 {
		t.Errorf("got %+v, want exactly the new row with zeroed other fields", got)
	}

	mock.ExpectQuery("SELECT id, name FROM accounts").WillReturnRows(sqlmock.NewRows([]string{"id", "name"}))
	var none []Account
	if err := m.ExecuteQuery(context.Background(), &none, "SELECT id, name FROM accounts"); err != nil {
		t.Fatal(err)
	}
	if none == nil || len(none) != 0 {
		t.Errorf("no rows: got %#v, want an empty non-nil slice", none)
	}
}

func TestExecuteQueryOtherDestinations(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "mysql")

	mock.ExpectQuery("SELECT id, name FROM a WHERE id > ?").WithArgs(0).
		WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "x").AddRow(2, "y"))
	var ptrs []*Account
	if err := m.ExecuteQuery(ctx, &ptrs, "SELECT id, name FROM a WHERE id > ?", 0); err != nil {
		t.Fatal(err)
	}
	if len(ptrs) != 2 || ptrs[0].Name != "x" || ptrs[1].ID != 2 || ptrs[0] == ptrs[1] {
		t.Errorf("[]*Account = %+v", ptrs)
	}

	mock.ExpectQuery("SELECT name FROM a").WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("x").AddRow("y"))
	var names []string
	if err := m.ExecuteQuery(ctx, &names, "SELECT name FROM a"); err != nil || strings.Join(names, ",") != "x,y" {
		t.Errorf("[]string = %v, %v", names, err)
	}

	mock.ExpectQuery("SELECT id FROM a").WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(int64(4)).AddRow(int64(5)))
	var ids []int64
	if err := m.ExecuteQuery(ctx, &ids, "SELECT id FROM a"); err != nil || len(ids) != 2 || ids[1] != 5 {
		t.Errorf("[]int64 = %v, %v", ids, err)
	}

	mock.ExpectQuery("SELECT id, name, data FROM a").WillReturnRows(
		sqlmock.NewRowsWithColumnDefinition(
			sqlmock.NewColumn("id").OfType("BIGINT", int64(0)),
			sqlmock.NewColumn("name").OfType("VARCHAR", ""),
			sqlmock.NewColumn("data").OfType("BLOB", []byte(nil)),
		).AddRow(int64(1), []byte("text"), []byte{0, 1}))
	var maps []map[string]any
	if err := m.ExecuteQuery(ctx, &maps, "SELECT id, name, data FROM a"); err != nil {
		t.Fatal(err)
	}
	if len(maps) != 1 || maps[0]["id"] != int64(1) || maps[0]["name"] != "text" {
		t.Errorf("maps = %#v (text columns should come back as string)", maps)
	}
	if b, ok := maps[0]["data"].([]byte); !ok || len(b) != 2 {
		t.Errorf("binary column = %#v, want []byte", maps[0]["data"])
	}
}

func TestPlaceholders(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ driver, in, sent string }{
		{"postgres", "SELECT name FROM a WHERE id = ? AND x = '?'", "SELECT name FROM a WHERE id = $1 AND x = '?'"},
		{"pgx", "SELECT name FROM a WHERE id = ?", "SELECT name FROM a WHERE id = $1"},
		{"postgres", "SELECT name FROM a WHERE id = $1", "SELECT name FROM a WHERE id = $1"},
		{"mysql", "SELECT name FROM a WHERE id = ?", "SELECT name FROM a WHERE id = ?"},
		{"sqlite", "SELECT name FROM a WHERE id = ?", "SELECT name FROM a WHERE id = ?"},
	} {
		t.Run(tc.driver+"/"+tc.in, func(t *testing.T) {
			m, mock := newMock(t, tc.driver)
			mock.ExpectQuery(tc.sent).WithArgs(1).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("n"))
			var names []string
			if err := m.ExecuteQuery(ctx, &names, tc.in, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGetAndOne(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "postgres")
	mock.ExpectQuery("SELECT id, name FROM a WHERE id = $1").WithArgs(1).
		WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "ada").AddRow(2, "ignored"))
	var a Account
	if err := m.Get(ctx, &a, "SELECT id, name FROM a WHERE id = ?", 1); err != nil || a.Name != "ada" {
		t.Errorf("Get = %+v, %v", a, err)
	}

	mock.ExpectQuery("SELECT id, name FROM a WHERE id = $1").WithArgs(9).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}))
	_, err := dbm.One[Account](ctx, m, "SELECT id, name FROM a WHERE id = ?", 9)
	if !errors.Is(err, dbm.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("One with no row: %v, want ErrNotFound and sql.ErrNoRows", err)
	}

	mock.ExpectQuery("SELECT count(*) FROM a").WillReturnRows(sqlmock.NewRows([]string{"count"}).AddRow(3))
	n, err := dbm.One[int](ctx, m, "SELECT count(*) FROM a")
	if err != nil || n != 3 {
		t.Errorf("One[int] = %d, %v", n, err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Get/One, want 0", s.InUse)
	}
}

func TestExecPassesResult(t *testing.T) {
	m, mock := newMock(t, "postgres")
	mock.ExpectExec("UPDATE a SET name = $1 WHERE id = $2").WithArgs("x", 1).WillReturnResult(sqlmock.NewResult(0, 3))
	res, err := m.Exec(context.Background(), "UPDATE a SET name = ? WHERE id = ?", "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 3 {
		t.Errorf("RowsAffected = %d, want 3", n)
	}
	if s := m.Stats(); s.Statements != 1 || s.Errors != 0 {
		t.Errorf("stats = %+v", s)
	}
}

type stateErr struct{ code string }

func (e *stateErr) Error() string    { return "server says " + e.code }
func (e *stateErr) SQLState() string { return e.code }

func TestDriverErrorsAreClassifiedAndReachable(t *testing.T) {
	m, mock := newMock(t, "postgres")
	cause := &stateErr{"23505"}
	mock.ExpectExec("INSERT INTO a VALUES ($1)").WithArgs(1).WillReturnError(cause)
	_, err := m.Exec(context.Background(), "INSERT INTO a VALUES (?)", 1)
	if !errors.Is(err, dbm.ErrUniqueViolation) {
		t.Errorf("err = %v, want ErrUniqueViolation", err)
	}
	var se *stateErr
	if !errors.As(err, &se) || se != cause {
		t.Error("driver error not reachable with errors.As")
	}
	var de *dbm.Error
	if !errors.As(err, &de) || de.Code != "23505" || de.Op != "exec" || de.Query != "INSERT INTO a VALUES ($1)" {
		t.Errorf("*dbm.Error = %+v", de)
	}
	s := m.Stats()
	if s.Errors != 1 || s.ErrorsByClass["unique_violation"] != 1 {
		t.Errorf("error stats = %d %v", s.Errors, s.ErrorsByClass)
	}
}

// Bad input must give a typed error, never a panic, and leave no connection
// in use.
// Close is idempotent; every call after it is in the bad-input table
// (badinput_test.go).
func TestClosedManager(t *testing.T) {
	m, mock := newMock(t, "postgres")
	mock.ExpectClose()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil (idempotent)", err)
	}
	if err := m.Ping(context.Background()); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
}

func TestWithTx(t *testing.T) {
	ctx := context.Background()
	t.Run("commit", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectExec("INSERT INTO a VALUES ($1)").WithArgs(1).WillReturnResult(sqlmock.NewResult(1, 1))
		mock.ExpectCommit()
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO a VALUES (?)", 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := m.Stats(); s.Transactions != 1 || s.Commits != 1 || s.Rollbacks != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
	t.Run("rollback on error", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectRollback()
		boom := errors.New("boom")
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return boom })
		if err != boom {
			t.Errorf("err = %v, want fn's error unchanged", err)
		}
		if s := m.Stats(); s.Rollbacks != 1 || s.Commits != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
	t.Run("rollback on panic", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectRollback()
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Errorf("recovered %v, want the original panic", p)
			}
		}()
		_ = m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { panic("kaboom") })
		t.Error("WithTx did not re-panic")
	})
	t.Run("fn committed itself", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectCommit()
		err := m.WithTx(ctx, nil, func(_ context.Context, tx *dbm.Tx) error { return tx.Commit() })
		if err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("fn rolled back itself", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectRollback()
		err := m.WithTx(ctx, nil, func(_ context.Context, tx *dbm.Tx) error { return tx.Rollback() })
		if !errors.Is(err, dbm.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	})
	t.Run("connection lost during commit", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil })
		if !errors.Is(err, dbm.ErrCommitUnknown) || !errors.Is(err, dbm.ErrConnection) {
			t.Errorf("err = %v, want ErrCommitUnknown and ErrConnection", err)
		}
		if dbm.IsRetryable(err) || dbm.Classify(err) != dbm.ClassCommitUnknown {
			t.Errorf("a commit of unknown outcome must not be retryable (class %v)", dbm.Classify(err))
		}
	})
	t.Run("commit fails without a server answer", func(t *testing.T) {
		m, mock := newMock(t, "mysql")
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(errors.New("invalid connection")) // go-sql-driver/mysql's ErrInvalidConn
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil })
		if !errors.Is(err, dbm.ErrCommitUnknown) || dbm.IsRetryable(err) {
			t.Errorf("err = %v, want ErrCommitUnknown, not retryable", err)
		}
	})
	t.Run("commit after the manager closed", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		mock.ExpectBegin()
		mock.ExpectRollback()
		mock.ExpectClose()
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); !errors.Is(err, dbm.ErrLeaked) { // does not wait for the transaction, reports it
			t.Fatalf("Close with an open transaction = %v, want ErrLeaked", err)
		}
		if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
			t.Errorf("Commit after Close = %v, want ErrClosed (and a rollback)", err)
		}
	})
	t.Run("commit fails", func(t *testing.T) {
		m, mock := newMock(t, "postgres")
		dbm.SetRetryForTest(m, 1, 0, 0, 0) // no rerun: retry_test.go covers reruns
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(&stateErr{"40001"})
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return nil })
		if !errors.Is(err, dbm.ErrSerialization) {
			t.Errorf("err = %v, want ErrSerialization", err)
		}
	})
}

func TestTxLifecycle(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "postgres")
	mock.ExpectBegin()
	mock.ExpectQuery("SELECT id, name FROM a").WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "x"))
	mock.ExpectCommit()
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // must be a no-op after Commit
	got, err := dbm.Select[Account](ctx, tx, "SELECT id, name FROM a")
	if err != nil || len(got) != 1 {
		t.Fatalf("Select in tx = %v, %v", got, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after Commit = %v, want nil", err)
	}
	if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) || !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("second Commit = %v, want ErrClosed and sql.ErrTxDone", err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Exec after Commit = %v, want ErrClosed", err)
	}
}

func TestRowsStructScan(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "postgres")
	mock.ExpectQuery("SELECT id, name FROM a").WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "x").AddRow(2, "y"))
	rows, err := m.Query(ctx, "SELECT id, name FROM a")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var a Account
		if err := rows.StructScan(&a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a.Name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "x,y" {
		t.Errorf("got %v", got)
	}
	if err := rows.StructScan(nil); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("StructScan(nil) = %v", err)
	}
	if err := rows.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := rows.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWrapRejectsNil(t *testing.T) {
	if _, err := dbm.Wrap(nil, "postgres"); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("Wrap(nil) = %v", err)
	}
}
