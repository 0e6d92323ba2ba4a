package dbm

import (
	"context"
	"strings"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
)

// IN lists of every length leave the statement cache holding the caller's
// text only: what a statement is (a read, its plan hint) is judged once
// for it, and the expanded texts, new for each call, enter no cache.
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
			if err != nil || len(args) != n || strings.Count(st.sent, "$") != n || !st.read || st.plan == nil && n > 2 {
				t.Fatalf("n=%d: sent %q, %d args, read %v, plan %v, %v", n, st.sent, len(args), st.read, st.plan != nil, err)
			}
		}
	}
	for i := range m.stmts.slots {
		if e := m.stmts.slots[i].Load(); e != nil && e.text != q {
			t.Errorf("statement cache slot %d holds %q", i, e.text)
		}
	}
}
