package conformance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// testINLists: a slice bound alone in IN (...) expands to one placeholder
// per element, in '?' and in the driver's own style, in every entry point;
// an empty one is an argument error that sends nothing.
func testINLists(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	d := tg.Dialect
	q := "SELECT name FROM " + tbl + " WHERE id IN (?) AND name NOT IN (?) ORDER BY id"
	if got, err := dbm.Select[string](ctx, m, q, []int64{1, 2, 3}, []string{"grace"}); err != nil || !slices.Equal(got, []string{"ada", "alan"}) {
		t.Errorf("Select(%q) = %q, %v; want [ada alan]", q, got, err)
	}
	native := "SELECT name FROM " + tbl + " WHERE age > " + d.Placeholder(1) + " AND id IN (" + d.Placeholder(2) + ") ORDER BY id"
	if got, err := dbm.Select[string](ctx, m, native, 40, []int{2, 3}); err != nil || !slices.Equal(got, []string{"grace", "alan"}) {
		t.Errorf("Select(%q) = %q, %v; want [grace alan]", native, got, err)
	}
	// Many lengths: each is right (the caches are keyed by the caller's text).
	for n := 1; n <= 40; n++ {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(i + 1)
		}
		if got, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl+" WHERE id IN (?)", ids); err != nil || got != min(int64(n), 3) {
			t.Fatalf("count with %d ids = %d, %v", n, got, err)
		}
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE "+tbl+" SET age = age + 1 WHERE id IN (?)", []int64{1, 3})
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Errorf("UPDATE ... IN (?) in a Tx: %d rows, want 2", n)
		}
		var ages []int64
		if err := tx.ExecuteQuery(ctx, &ages, "SELECT age FROM "+tbl+" WHERE id IN (?) ORDER BY id", []int64{1, 3}); err != nil || !slices.Equal(ages, []int64{37, 42}) {
			t.Errorf("ExecuteQuery in a Tx = %v, %v; want [37 42]", ages, err)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatalf("WithTx = %v", err)
	}
	var name string
	if err := m.Get(ctx, &name, "SELECT name FROM "+tbl+" WHERE id IN (?)", []int64{2}); err != nil || name != "grace" {
		t.Errorf("Get with a one-element list = %q, %v", name, err)
	}
	_, err = m.Exec(ctx, "DELETE FROM "+tbl+" WHERE id IN (?)", []int64{})
	var ae *dbm.ArgumentError
	if !errors.Is(err, dbm.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Arg != "args[0]" {
		t.Errorf("empty list: %v; want an ArgumentError on args[0]", err)
	}
	if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl); err != nil || n != 3 {
		t.Errorf("rows after the refused DELETE: %d, %v; want 3", n, err)
	}
	assertIdle(t, m)
}

// testNamed: :name parameters from a struct (db tags, an embedded struct)
// or a map, in every entry point; a missing name is an error naming it.
func testNamed(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	type Filter struct {
		MinAge int64 `db:"min_age"`
	}
	type query struct {
		Filter
		Skip  []int64 `db:"skip"`
		Limit int64
	}
	args := query{Filter: Filter{MinAge: 40}, Skip: []int64{3}, Limit: 10}
	q := "SELECT name FROM " + tbl + " WHERE age > :min_age AND id NOT IN (:skip) AND id < :limit ORDER BY id"
	if got, err := dbm.Select[string](ctx, m, q, args); err != nil || !slices.Equal(got, []string{"grace"}) {
		t.Errorf("Select(%q, struct) = %q, %v; want [grace]", q, got, err)
	}
	if got, err := dbm.Select[string](ctx, m, q, &args); err != nil || !slices.Equal(got, []string{"grace"}) {
		t.Errorf("Select(%q, *struct) = %q, %v; want [grace]", q, got, err)
	}
	p := person{ID: 4, Name: "edsger", Age: 72}
	if _, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id, name, age) VALUES (:id, :name, :age)", p); err != nil {
		t.Fatalf("Exec named insert: %v", err)
	}
	byName := map[string]any{"name": "edsger", "n": "edsger"}
	var got person
	if err := m.Get(ctx, &got, "SELECT id, name, age FROM "+tbl+" WHERE name = :name OR name = :n", byName); err != nil || got != p {
		t.Errorf("Get(map) = %+v, %v; want %+v", got, err, p)
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE "+tbl+" SET age = :age WHERE id = :id", map[string]any{"age": 73, "id": 4})
		return err
	})
	if n, err2 := dbm.One[int64](ctx, m, "SELECT age FROM "+tbl+" WHERE id = :id", map[string]any{"id": 4}); err != nil || err2 != nil || n != 73 {
		t.Errorf("named UPDATE in WithTx, then One: age = %d, %v, %v; want 73", n, err, err2)
	}
	if tg.Dialect.Placeholder(1) == "$1" {
		// PostgreSQL casts beside named parameters (sqlx issues 91, 428, 650,
		// 956 and 983 are about these).
		for _, c := range []struct{ q, want string }{
			{"SELECT (:id::int + 1)::text", "5"},
			{"SELECT t.name::text FROM " + tbl + " AS t WHERE t.id = :id", "edsger"},
			{"SELECT ((1, 'John')::record)::text || :name", "(1,John)edsger"},
			{"SELECT '12:30:00'::time::text || :name", "12:30:00edsger"},
		} {
			if got, err := dbm.One[string](ctx, m, c.q, map[string]any{"id": 4, "name": "edsger"}); err != nil || got != c.want {
				t.Errorf("One(%q) = %q, %v; want %q", c.q, got, err, c.want)
			}
		}
	}
	_, err = m.Exec(ctx, "DELETE FROM "+tbl+" WHERE id = :id AND name = :nmae", p)
	var ae *dbm.ArgumentError
	if !errors.As(err, &ae) || !errors.Is(err, dbm.ErrInvalidArgument) || !strings.Contains(err.Error(), ":nmae") {
		t.Errorf("a missing name: %v; want an ArgumentError naming :nmae", err)
	}
	assertIdle(t, m)
}
