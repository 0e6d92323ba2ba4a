package dbm_test

import (
	"context"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// rebindCases are statements with '?' where sqlx's Rebind and the manager
// disagree, and what the manager sends for $n drivers.
var rebindCases = []struct {
	name, query, numbered string
	args                  []any // one per placeholder (SQLite refuses extra arguments)
}{
	{"plain", "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2", []any{1, 2}},
	{"in a string", "SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = $1", []any{1}},
	{"in comments", "SELECT a /* ? */ FROM t -- ?\nWHERE a = ?", "SELECT a /* ? */ FROM t -- ?\nWHERE a = $1", []any{1}},
	{"in a quoted identifier", `SELECT "a?" FROM t WHERE b = ?`, `SELECT "a?" FROM t WHERE b = $1`, []any{1}},
	{"dollar-quoted", "SELECT $$?$$, ? FROM t", "SELECT $$?$$, $1 FROM t", []any{1}},
	{"already numbered: jsonb ?", "SELECT * FROM t WHERE data ? 'k' AND id = $1", "SELECT * FROM t WHERE data ? 'k' AND id = $1", []any{1}},
	{"trailing semicolon", "SELECT ? ;\n", "SELECT $1", []any{1}},
}

// TestRebindIsWhatTheDriverReceives: for each statement, the driver (go-sqlmock
// matching the text exactly) receives m.Rebind(query), which is the
// expected text, with both a $n and a ? driver.
func TestRebindIsWhatTheDriverReceives(t *testing.T) {
	ctx := context.Background()
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverPgx, dbm.DriverMySQL, dbm.DriverSQLite} {
		numbered := driver == dbm.DriverPostgres || driver == dbm.DriverPgx
		for _, c := range rebindCases {
			t.Run(driver+"/"+c.name, func(t *testing.T) {
				m, mock := newMock(t, driver)
				want := c.numbered
				if !numbered {
					want = mysqlSent(c.query)
				}
				got := m.Rebind(c.query)
				if got != want {
					t.Errorf("Rebind(%q) = %q, want %q", c.query, got, want)
				}
				mock.ExpectQuery(got).WillReturnRows(sqlmock.NewRows([]string{"a"}).AddRow(1))
				mock.ExpectExec(got).WillReturnResult(sqlmock.NewResult(0, 1))
				var out []int64
				if err := m.ExecuteQuery(ctx, &out, c.query, c.args...); err != nil {
					t.Errorf("ExecuteQuery sent something else than Rebind's %q: %v", got, err)
				}
				if _, err := m.Exec(ctx, c.query, c.args...); err != nil {
					t.Errorf("Exec sent something else than Rebind's %q: %v", got, err)
				}
			})
		}
	}
}

// mysqlSent is what a '?' driver gets: the statement without its trailing
// semicolon and white space.
func mysqlSent(q string) string {
	if q == "SELECT ? ;\n" {
		return "SELECT ?"
	}
	return q
}

func TestRebindNilManager(t *testing.T) {
	var m *dbm.Manager
	if got := m.Rebind("SELECT ?"); got != "SELECT ?" {
		t.Errorf("nil Manager: Rebind = %q", got)
	}
}
