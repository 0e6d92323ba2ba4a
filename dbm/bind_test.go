package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// The text and arguments the driver receives for IN lists and named
// parameters, for a '?' driver and a $n driver (go-sqlmock matches both
// exactly).
func TestBindSends(t *testing.T) {
	type Inner struct {
		Tenant int64 `db:"tenant"`
	}
	type params struct {
		Inner
		IDs  []int64 `db:"ids"`
		Name string
		Raw  []byte `db:"raw"`
	}
	p := params{Inner{7}, []int64{1, 2}, "ada", []byte("xy")}
	for _, c := range []struct {
		name         string
		query        string
		args         []any
		question, pg string
		wantArgs     []driver.Value
	}{
		{"IN list", "SELECT a FROM t WHERE id IN (?)", []any{[]int64{4, 5, 6}},
			"SELECT a FROM t WHERE id IN (?, ?, ?)", "SELECT a FROM t WHERE id IN ($1, $2, $3)", []driver.Value{int64(4), int64(5), int64(6)}},
		{"lists and scalars", "SELECT a FROM t WHERE x = ? AND id NOT IN (?) AND s IN (?)", []any{1, []int{2, 3}, []string{"q"}},
			"SELECT a FROM t WHERE x = ? AND id NOT IN (?, ?) AND s IN (?)", "SELECT a FROM t WHERE x = $1 AND id NOT IN ($2, $3) AND s IN ($4)",
			[]driver.Value{int64(1), int64(2), int64(3), "q"}},
		{"[]byte is one value", "SELECT a FROM t WHERE b IN (?) AND id IN (?)", []any{[]byte("ab"), []int64{1, 2}},
			"SELECT a FROM t WHERE b IN (?) AND id IN (?, ?)", "SELECT a FROM t WHERE b IN ($1) AND id IN ($2, $3)", []driver.Value{[]byte("ab"), int64(1), int64(2)}},
		{"named struct", "SELECT a FROM t WHERE tenant = :tenant AND id IN (:ids) AND name = :name AND raw = :raw AND tenant2 = :tenant", []any{p},
			"SELECT a FROM t WHERE tenant = ? AND id IN (?, ?) AND name = ? AND raw = ? AND tenant2 = ?",
			"SELECT a FROM t WHERE tenant = $1 AND id IN ($2, $3) AND name = $4 AND raw = $5 AND tenant2 = $6",
			[]driver.Value{int64(7), int64(1), int64(2), "ada", []byte("xy"), int64(7)}},
		{"named map with a cast", "SELECT :v::int, ':x', \"a:b\" -- :c\n", []any{map[string]any{"v": "5"}},
			"SELECT ?::int, ':x', \"a:b\" -- :c", "SELECT $1::int, ':x', \"a:b\" -- :c", []driver.Value{"5"}},
	} {
		for _, drv := range []string{dbm.DriverMySQL, dbm.DriverPostgres} {
			t.Run(c.name+"/"+drv, func(t *testing.T) {
				m, mock := newMock(t, drv)
				want := c.question
				if drv == dbm.DriverPostgres {
					want = c.pg
				}
				mock.ExpectQuery(want).WithArgs(c.wantArgs...).WillReturnRows(sqlmock.NewRows([]string{"a"}).AddRow(1))
				if _, err := dbm.Select[int64](context.Background(), m, c.query, c.args...); err != nil {
					t.Errorf("Select(%q): %v", c.query, err)
				}
			})
		}
	}
}

// A $n statement keeps its numbering style: a list's elements get new
// numbers, a placeholder used twice keeps one, a list outside IN (...) is
// passed as it is (= ANY($1) for drivers that send arrays).
func TestBindRenumbers(t *testing.T) {
	m, mock := newMock(t, dbm.DriverPgx)
	mock.ExpectQuery("SELECT a FROM t WHERE id IN ($1, $2) AND b = $3 AND c = $3 AND d = ANY($4)").
		WithArgs(int64(8), int64(9), "b", sqlmock.AnyArg()).WillReturnRows(sqlmock.NewRows([]string{"a"}))
	if _, err := dbm.Select[int64](context.Background(), m, "SELECT a FROM t WHERE id IN ($2) AND b = $1 AND c = $1 AND d = ANY($3)",
		"b", []int64{8, 9}, fakeArray{}); err != nil {
		t.Fatal(err)
	}
}

// fakeArray is a driver.Valuer, as pq.Array's result is: never expanded.
type fakeArray struct{}

func (fakeArray) Value() (driver.Value, error) { return "{1}", nil }

// Bad input: an empty list, a missing name, a nil pointer source; each an
// ArgumentError naming the argument, nothing sent, nothing left in use.
func TestBindBadInput(t *testing.T) {
	type row struct{ ID int64 }
	var nilRow *row
	for _, c := range []struct {
		query, arg, want string
		args             []any
	}{
		{"DELETE FROM t WHERE id IN (?)", "args[0]", "empty []int64 in an IN list", []any{[]int64{}}},
		{"SELECT a FROM t WHERE x = $1 AND id IN ($2)", "args[1]", "empty []string", []any{1, []string{}}},
		{"DELETE FROM t WHERE id = :id AND n = :nmae", "args[0]", "no value for :nmae", []any{row{1}}},
		{"DELETE FROM t WHERE id = :id", "args[0]", `no value for :id (the map has no key "id")`, []any{map[string]any{"ID": 1}}},
		{"DELETE FROM t WHERE id = :id", "args[0]", "nil *dbm_test.row", []any{nilRow}},
	} {
		m, _ := newMock(t, dbm.DriverPostgres) // no expectation: nothing may be sent
		_, err := m.Exec(context.Background(), c.query, c.args...)
		var ae *dbm.ArgumentError
		if !errors.Is(err, dbm.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Arg != c.arg || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Exec(%q, %v) = %v; want an ArgumentError on %s saying %q", c.query, c.args, err, c.arg, c.want)
		}
		if s := m.Stats(); s.InUse != 0 {
			t.Errorf("InUse = %d after a refused statement", s.InUse)
		}
	}
}

// A struct or map that the statement does not name (:name absent) is an
// ordinary argument: the driver sees it, as before.
func TestBindLeavesPositionalStructs(t *testing.T) {
	m, mock := newMock(t, dbm.DriverPostgres)
	mock.ExpectExec("UPDATE t SET v = $1").WithArgs(sql.NullString{String: "x", Valid: true}).WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(context.Background(), "UPDATE t SET v = $1", sql.NullString{String: "x", Valid: true}); err != nil {
		t.Fatal(err)
	}
}
