package dbm

import (
	"context"
	"strings"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
)

// IN lists of every length leave the statement cache holding the caller's
// text only: what a statement is (a read) is judged once for it, and the
// expanded texts, new for each call, enter no cache.
func TestINListsDoNotFillTheStatementCache(t *testing.T) {
	db, _, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Wrap(db, DriverPostgres)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const q = "SELECT a FROM t WHERE id IN (?)"
	for n := 1; n <= 300; n++ {
		ids := make([]int, n)
		for range 2 { // twice: a text seen twice in a row would enter the cache
			st, args, err := m.session().prepareArgs(context.Background(), "Select", q, []any{ids})
			if err != nil || len(args) != n || strings.Count(st.sent, "$") != n || !st.read {
				t.Fatalf("n=%d: sent %q, %d args, read %v, %v", n, st.sent, len(args), st.read, err)
			}
		}
	}
	if m.stmts.len() != 1 {
		t.Errorf("statement cache holds %d statements, want 1", m.stmts.len())
	}
	if tab := m.stmts.t.Load(); tab == nil || tab.find(q) == nil {
		t.Errorf("statement cache does not hold %q", q)
	}
}
