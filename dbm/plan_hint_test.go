package dbm_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type hintPerson struct {
	ID   int    `db:"id"`
	Name string `db:"name"`
	Age  int    `db:"age"`
}

type hintName struct {
	Name string `db:"name"`
}

// hintPadded takes the same column as hintName at another offset.
type hintPadded struct {
	Pad  [3]int64
	Name string `db:"name"`
}

// The manager remembers the plan a statement's rows were last scanned
// with. The same text returning other columns (SELECT * after a schema
// change), or scanned into another type, must get a plan of its own.
func TestSameStatementNewColumnsOrTypeGetsItsOwnPlan(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "sqlmock")
	const q = "SELECT * FROM people"
	steps := []struct {
		cols []string
		row  []driver.Value
		want hintPerson
	}{
		{[]string{"id", "name"}, []driver.Value{1, "ann"}, hintPerson{ID: 1, Name: "ann"}},
		{[]string{"id", "name"}, []driver.Value{2, "bob"}, hintPerson{ID: 2, Name: "bob"}},
		{[]string{"id", "name"}, []driver.Value{3, "cy"}, hintPerson{ID: 3, Name: "cy"}},
		{[]string{"name", "id"}, []driver.Value{"dee", 4}, hintPerson{ID: 4, Name: "dee"}},
		{[]string{"id", "name", "age"}, []driver.Value{5, "eve", 50}, hintPerson{ID: 5, Name: "eve", Age: 50}},
		{[]string{"age", "id"}, []driver.Value{60, 6}, hintPerson{ID: 6, Age: 60}},
	}
	for i, st := range steps {
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows(st.cols).AddRow(st.row...))
		got, err := dbm.Select[hintPerson](ctx, m, q)
		if err != nil || len(got) != 1 || got[0] != st.want {
			t.Fatalf("step %d (%v): Select = %+v, %v; want [%+v]", i, st.cols, got, err, st.want)
		}
	}
	// The same statement into other types, alternating, through every
	// call that scans.
	for i := range 3 {
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("fay"))
		var names []hintName
		if err := m.ExecuteQuery(ctx, &names, q); err != nil || len(names) != 1 || names[0].Name != "fay" {
			t.Fatalf("round %d: ExecuteQuery = %+v, %v", i, names, err)
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("fig"))
		if ps, err := dbm.Select[hintPadded](ctx, m, q); err != nil || len(ps) != 1 || ps[0] != (hintPadded{Name: "fig"}) {
			t.Fatalf("round %d: Select[hintPadded] = %+v, %v", i, ps, err)
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("gus"))
		if s, err := dbm.One[string](ctx, m, q); err != nil || s != "gus" {
			t.Fatalf("round %d: One[string] = %q, %v", i, s, err)
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"name", "id"}).AddRow("hal", 8))
		var p hintPerson
		if err := m.Get(ctx, &p, q); err != nil || p != (hintPerson{ID: 8, Name: "hal"}) {
			t.Fatalf("round %d: Get = %+v, %v", i, p, err)
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(9, "ivy"))
		for p, err := range dbm.Iter[*hintPerson](ctx, m, q) {
			if err != nil || *p != (hintPerson{ID: 9, Name: "ivy"}) {
				t.Fatalf("round %d: Iter = %+v, %v", i, p, err)
			}
		}
	}
}

// A read that fails part-way through its rows and is retried returns the
// rows of the attempt that succeeded, not those of both.
func TestRetriedReadKeepsOnlyTheLastAttemptsRows(t *testing.T) {
	ctx := context.Background()
	const q = "SELECT id, name FROM people"
	failing := func() *sqlmock.Rows {
		return sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "old").AddRow(2, "old").RowError(1, io.ErrUnexpectedEOF)
	}
	good := func() *sqlmock.Rows {
		return sqlmock.NewRows([]string{"id", "name"}).AddRow(10, "new").AddRow(20, "new")
	}
	check := func(t *testing.T, m *dbm.Manager, got []hintPerson) {
		t.Helper()
		want := []hintPerson{{ID: 10, Name: "new"}, {ID: 20, Name: "new"}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if r := m.Stats().Retries; r != 1 {
			t.Errorf("Retries = %d, want 1", r)
		}
	}
	t.Run("Select", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectQuery(q).WillReturnRows(failing())
		mock.ExpectQuery(q).WillReturnRows(good())
		got, err := dbm.Select[hintPerson](ctx, m, q)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, got)
	})
	t.Run("ExecuteQuery", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectQuery(q).WillReturnRows(failing())
		mock.ExpectQuery(q).WillReturnRows(good())
		got := []hintPerson{{ID: 99}, {ID: 98}, {ID: 97}} // the caller's old values
		if err := m.ExecuteQuery(ctx, &got, q); err != nil {
			t.Fatal(err)
		}
		check(t, m, got)
	})
}

// ExecuteQuery remembers destination types; a nil *[]T of a type it has
// seen, or another type in the same slot, must still be checked.
func TestExecuteQueryDestinationsCheckedAfterCaching(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "sqlmock")
	const q = "SELECT id, name FROM people"
	for range 2 {
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "ann"))
		got := []hintPerson{{ID: 7, Age: 70}, {ID: 8}} // old values, capacity kept
		if err := m.ExecuteQuery(ctx, &got, q); err != nil || len(got) != 1 || got[0] != (hintPerson{ID: 1, Name: "ann"}) {
			t.Fatalf("ExecuteQuery = %+v, %v", got, err)
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}))
		var none []hintPerson
		if err := m.ExecuteQuery(ctx, &none, q); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("no rows: %#v, %v; want an empty, non-nil slice", none, err)
		}
	}
	var nilDest *[]hintPerson
	err := m.ExecuteQuery(ctx, nilDest, q)
	var ae *dbm.ArgumentError
	if !errors.As(err, &ae) || ae.Arg != "dest" {
		t.Fatalf("nil *[]T after the type was seen: %v, want an ArgumentError for dest", err)
	}
	var notSlice hintPerson
	if err := m.ExecuteQuery(ctx, &notSlice, q); !errors.As(err, &ae) {
		t.Fatalf("*struct: %v, want an ArgumentError", err)
	}
}

// A Get (or One) whose first attempt read a row and then failed, and whose
// retry finds no row, fails with ErrNotFound; the row of the failed attempt
// must not be left in dest (nor returned by One) as if it had been read.
func TestRetriedGetKeepsNoRowOfTheFailedAttempt(t *testing.T) {
	ctx := context.Background()
	const q = "SELECT id, name FROM people"
	type person struct {
		ID   int     `db:"id"`
		Name *string `db:"name"`
	}
	attempts := func(mock sqlmock.Sqlmock) {
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "old").CloseError(io.ErrUnexpectedEOF))
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}))
	}
	t.Run("Get", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		attempts(mock)
		var p person
		err := m.Get(ctx, &p, q)
		if !errors.Is(err, dbm.ErrNotFound) {
			t.Fatalf("Get = %v, want ErrNotFound after the retry", err)
		}
		if p.ID != 0 || p.Name != nil {
			t.Errorf("dest = {ID:%d, Name set:%v} after ErrNotFound: the failed attempt's row", p.ID, p.Name != nil)
		}
	})
	t.Run("One", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		attempts(mock)
		p, err := dbm.One[*person](ctx, m, q)
		if !errors.Is(err, dbm.ErrNotFound) || p != nil {
			t.Errorf("One = %+v, %v; want nil, ErrNotFound", p, err)
		}
	})
}

// A connection lost while a read's rows stream in is a fault of that
// statement: with retries off it is returned, not replaced and rerun at
// once as a stale pooled connection would be.
func TestMidResultLossIsNotAStaleConnection(t *testing.T) {
	ctx := context.Background()
	m, mock, _ := newRetryMock(t, "postgres", 1)
	const q = "SELECT id, name FROM people"
	mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "name"}).AddRow(1, "a").AddRow(2, "b").RowError(1, driver.ErrBadConn))
	got, err := dbm.Select[hintPerson](ctx, m, q)
	if !errors.Is(err, dbm.ErrConnection) || got != nil {
		t.Fatalf("Select = %+v, %v; want ErrConnection and no rows", got, err)
	}
	if r := m.Stats().Retries; r != 0 {
		t.Errorf("Retries = %d, want 0 with retries off", r)
	}
}

// The scan plan is found by the result's columns, not by the statement's
// text: the same statement whose result changed shape (SELECT * after an
// ALTER TABLE, another search_path) fills the fields its new columns name,
// for every call that scans, and a column it no longer knows is reported.
// Rows.Scan itself checks only the number of columns.
func TestSameStatementWithNewColumnsFillsTheRightFields(t *testing.T) {
	ctx := context.Background()
	const q = "SELECT * FROM people"
	results := []struct {
		cols []string
		row  []driver.Value
	}{
		{[]string{"id", "name", "age"}, []driver.Value{1, "ann", 30}},
		{[]string{"age", "name", "id"}, []driver.Value{31, "bob", 2}}, // reordered, same count and types
		{[]string{"id", "age", "name"}, []driver.Value{3, 32, "cy"}},
	}
	want := []hintPerson{{1, "ann", 30}, {2, "bob", 31}, {3, "cy", 32}}
	m, mock := newMock(t, "sqlmock")
	for i, r := range results {
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows(r.cols).AddRow(r.row...))
		var got []hintPerson
		if err := m.ExecuteQuery(ctx, &got, q); err != nil || len(got) != 1 || got[0] != want[i] {
			t.Fatalf("ExecuteQuery, result %d: %+v, %v; want %+v", i, got, err, want[i])
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows(r.cols).AddRow(r.row...))
		if got, err := dbm.Select[hintPerson](ctx, m, q); err != nil || len(got) != 1 || got[0] != want[i] {
			t.Fatalf("Select, result %d: %+v, %v; want %+v", i, got, err, want[i])
		}
		mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows(r.cols).AddRow(r.row...))
		if got, err := dbm.One[hintPerson](ctx, m, q); err != nil || got != want[i] {
			t.Fatalf("One, result %d: %+v, %v; want %+v", i, got, err, want[i])
		}
	}
	mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"id", "nickname", "age"}).AddRow(4, "dee", 33)) // renamed
	var got []hintPerson
	if err := m.ExecuteQuery(ctx, &got, q); !errors.Is(err, dbm.ErrUnknownColumn) || len(got) != 0 {
		t.Fatalf("renamed column: %+v, %v; want ErrUnknownColumn and no rows", got, err)
	}
}

// forgetfulTracer returns a context of its own from Start, without the
// caller's values.
type forgetfulTracer struct{}

func (forgetfulTracer) Start(context.Context, dbm.TraceOp) context.Context {
	return context.Background()
}
func (forgetfulTracer) End(context.Context, dbm.TraceOp, dbm.TraceResult) {}

// IgnoreUnknownColumns is read from the caller's context by every call
// that scans, whatever context a Tracer's Start hands the statement.
func TestIgnoreUnknownColumnsReadFromTheCallersContext(t *testing.T) {
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, "sqlmock", dbm.WithTracer(forgetfulTracer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := dbm.IgnoreUnknownColumns(context.Background())
	const q = "SELECT id, name, extra FROM people"
	rows := func() *sqlmock.Rows {
		return sqlmock.NewRows([]string{"id", "name", "extra"}).AddRow(1, "ann", "x")
	}
	want := hintPerson{ID: 1, Name: "ann"}
	mock.ExpectQuery(q).WillReturnRows(rows())
	var got []hintPerson
	if err := m.ExecuteQuery(ctx, &got, q); err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("ExecuteQuery = %+v, %v", got, err)
	}
	mock.ExpectQuery(q).WillReturnRows(rows())
	if got, err := dbm.Select[hintPerson](ctx, m, q); err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("Select = %+v, %v", got, err)
	}
	mock.ExpectQuery(q).WillReturnRows(rows())
	var one hintPerson
	if err := m.Get(ctx, &one, q); err != nil || one != want {
		t.Fatalf("Get = %+v, %v", one, err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
