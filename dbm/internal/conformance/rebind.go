package conformance

import (
	"context"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// testRebind: a statement written with '?' (also inside a literal and a
// comment, and with a trailing semicolon) runs on the manager's *sql.DB
// once passed through m.Rebind, with the same rows as the manager's own call.
func testRebind(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	q := "SELECT name /* ? */ FROM " + tbl + " WHERE name <> '?' AND age > ? AND id <> ? ORDER BY id;"
	want, err := dbm.Select[string](ctx, m, q, 40, 3)
	if err != nil || len(want) != 1 || want[0] != "grace" {
		t.Fatalf("Select(%q) = %q, %v; want [grace]", q, want, err)
	}
	rows, err := m.DB().QueryContext(ctx, m.Rebind(q), 40, 3)
	if err != nil {
		t.Fatalf("DB().QueryContext(Rebind(%q)) = %v", q, err)
	}
	var got []string
	if err := dbm.ScanAll(rows, &got); err != nil || len(got) != 1 || got[0] != want[0] {
		t.Errorf("rows of Rebind(%q) on DB() = %q, %v; want %q", q, got, err, want)
	}
	assertIdle(t, m)
}
