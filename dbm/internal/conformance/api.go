package conformance

import (
	"context"
	"errors"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type person struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Age  int64  `db:"age"`
}

// peopleTable creates a table with the rows (1, ada, 36), (2, grace, 85),
// (3, alan, 41).
func peopleTable(t *testing.T, m *dbm.Manager, tg Target) string {
	t.Helper()
	d := tg.Dialect
	tbl := table(t, m, tg, "people", "id "+d.BigInt+" PRIMARY KEY, name "+d.Text+" NOT NULL, age "+d.BigInt+" NOT NULL")
	for _, p := range []person{{1, "ada", 36}, {2, "grace", 85}, {3, "alan", 41}} {
		if _, err := m.Exec(context.Background(), "INSERT INTO "+tbl+" (id, name, age) VALUES (?, ?, ?)", p.ID, p.Name, p.Age); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	return tbl
}

func testPlaceholders(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	d := tg.Dialect
	for _, c := range []struct {
		name, query string
		args        []any
		want        []string
	}{
		{"native", "SELECT name FROM " + tbl + " WHERE age > " + d.Placeholder(1) + " AND id <> " + d.Placeholder(2) + " ORDER BY id", []any{40, 3}, []string{"grace"}},
		{"question marks", "SELECT name FROM " + tbl + " WHERE age > ? AND id <> ? ORDER BY id", []any{40, 3}, []string{"grace"}},
		{"? in a literal is not a placeholder", "SELECT name FROM " + tbl + " WHERE name <> '?' AND id = ?", []any{1}, []string{"ada"}},
		{"? in a comment is not a placeholder", "SELECT name /* ? */ FROM " + tbl + " WHERE id = ? -- ?\n", []any{2}, []string{"grace"}},
		{"trailing semicolon", "SELECT name FROM " + tbl + " WHERE id = ?;", []any{3}, []string{"alan"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := dbm.Select[string](ctx, m, c.query, c.args...)
			if err != nil {
				t.Fatalf("Select(%q): %v", c.query, err)
			}
			if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
				t.Errorf("Select(%q) = %q, want %q", c.query, got, c.want)
			}
		})
	}
	if d.Placeholder(2) == "$2" {
		// PostgreSQL numbers its placeholders: one argument used twice.
		got, err := dbm.Select[string](ctx, m, "SELECT name FROM "+tbl+" WHERE id = $1 OR age = $1 + 84 ORDER BY id", 1)
		if err != nil || len(got) != 2 {
			t.Errorf("$1 used twice: %q, %v; want [ada grace]", got, err)
		}
	}
	assertIdle(t, m)
}

func testQueryAPI(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	all := "SELECT id, name, age FROM " + tbl + " ORDER BY id"

	var people []person
	if err := m.ExecuteQuery(ctx, &people, all); err != nil || len(people) != 3 || people[1] != (person{2, "grace", 85}) {
		t.Errorf("ExecuteQuery(*[]T) = %+v, %v", people, err)
	}
	var ptrs []*person
	if err := m.ExecuteQuery(ctx, &ptrs, all); err != nil || len(ptrs) != 3 || *ptrs[2] != (person{3, "alan", 41}) {
		t.Errorf("ExecuteQuery(*[]*T) = %v, %v", ptrs, err)
	}
	var maps []map[string]any
	if err := m.ExecuteQuery(ctx, &maps, all); err != nil || len(maps) != 3 || maps[0]["name"] != "ada" {
		t.Errorf("ExecuteQuery(*[]map) = %v, %v", maps, err)
	}

	var p person
	if err := m.Get(ctx, &p, "SELECT id, name, age FROM "+tbl+" WHERE id = ?", 2); err != nil || p != (person{2, "grace", 85}) {
		t.Errorf("Get = %+v, %v", p, err)
	}
	var name string
	if err := m.Get(ctx, &name, "SELECT name FROM "+tbl+" WHERE id = ?", 3); err != nil || name != "alan" {
		t.Errorf("Get(scalar) = %q, %v", name, err)
	}
	if err := m.Get(ctx, &p, "SELECT id, name, age FROM "+tbl+" WHERE id = ?", 99); !errors.Is(err, dbm.ErrNotFound) {
		t.Errorf("Get of no row: %v, want ErrNotFound", err)
	}

	if s, err := dbm.Select[person](ctx, m, "SELECT id, name, age FROM "+tbl+" WHERE age > ? ORDER BY id", 40); err != nil || len(s) != 2 || s[0].Name != "grace" {
		t.Errorf("Select = %+v, %v", s, err)
	}
	if o, err := dbm.One[person](ctx, m, "SELECT id, name, age FROM "+tbl+" WHERE name = ?", "alan"); err != nil || o.ID != 3 {
		t.Errorf("One = %+v, %v", o, err)
	}
	if _, err := dbm.One[person](ctx, m, "SELECT id, name, age FROM "+tbl+" WHERE name = ?", "nobody"); !errors.Is(err, dbm.ErrNotFound) {
		t.Errorf("One of no row: %v, want ErrNotFound", err)
	}

	var ids []int64
	for p, err := range dbm.Iter[person](ctx, m, all) {
		if err != nil {
			t.Fatalf("Iter: %v", err)
		}
		ids = append(ids, p.ID)
	}
	if len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Errorf("Iter ids = %v, want [1 2 3]", ids)
	}
	for p, err := range dbm.Iter[person](ctx, m, all) {
		if err != nil || p.ID != 1 {
			t.Errorf("Iter first row = %+v, %v", p, err)
		}
		break // leaving early must release the connection
	}
	assertIdle(t, m)

	res, err := m.Exec(ctx, "UPDATE "+tbl+" SET age = age + 1 WHERE age > ?", 40)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 2 {
		t.Errorf("RowsAffected = %d, %v; want 2", n, err)
	}
	rows, err := m.Query(ctx, "SELECT id, name, age FROM "+tbl+" WHERE id = ?", 2)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	var q []person
	for rows.Next() {
		var p person
		if err := rows.StructScan(&p); err != nil {
			t.Fatalf("StructScan: %v", err)
		}
		q = append(q, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows.Err: %v", err)
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("rows.Close: %v", err)
	}
	if len(q) != 1 || q[0].Age != 86 {
		t.Errorf("Query after the update = %+v, want grace aged 86", q)
	}
	assertIdle(t, m)
}

func testWithTx(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	count := func() int64 {
		t.Helper()
		n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl)
		if err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}
	before := m.Stats()

	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+tbl+" (id, name, age) VALUES (?, ?, ?)", 10, "edsger", 72); err != nil {
			return err
		}
		// The transaction sees its own write.
		n, err := dbm.One[int64](ctx, tx, "SELECT count(*) FROM "+tbl)
		if err == nil && n != 4 {
			t.Errorf("count inside the transaction = %d, want 4", n)
		}
		return err
	})
	if err != nil {
		t.Fatalf("WithTx (commit): %v", err)
	}
	if n := count(); n != 4 {
		t.Errorf("after commit: %d rows, want 4", n)
	}

	boom := errors.New("c5: roll back")
	err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+tbl); err != nil {
			return err
		}
		var p person
		if err := tx.Get(ctx, &p, "SELECT id, name, age FROM "+tbl+" WHERE id = ?", 10); !errors.Is(err, dbm.ErrNotFound) {
			t.Errorf("Get of a deleted row inside the transaction: %v, want ErrNotFound", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx (rollback) = %v, want the callback's error", err)
	}
	if n := count(); n != 4 {
		t.Errorf("after rollback: %d rows, want the 4 rows back", n)
	}

	after := m.Stats()
	if after.Commits-before.Commits != 1 || after.Rollbacks-before.Rollbacks != 1 {
		t.Errorf("Stats: %d commits, %d rollbacks; want 1 and 1", after.Commits-before.Commits, after.Rollbacks-before.Rollbacks)
	}
	assertIdle(t, m)
}
