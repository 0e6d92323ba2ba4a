package conformance

import (
	"context"
	"errors"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type order struct {
	ID     int64 `db:"id"`
	UserID int64 `db:"user_id"`
}

type user struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
}

// ordersTables creates a users table holding (7, ada@example.com) and an
// orders table holding (1, 7), (2, 7), and returns their names.
func ordersTables(t *testing.T, m *dbm.Manager, tg Target) (orders, users string) {
	t.Helper()
	d := tg.Dialect
	users = table(t, m, tg, "users", "id "+d.BigInt+" PRIMARY KEY, email "+d.Text+" NOT NULL")
	orders = table(t, m, tg, "orders", "id "+d.BigInt+" PRIMARY KEY, user_id "+d.BigInt+" NOT NULL")
	ctx := context.Background()
	for _, q := range []string{
		"INSERT INTO " + users + " (id, email) VALUES (7, 'ada@example.com')",
		"INSERT INTO " + orders + " (id, user_id) VALUES (1, 7), (2, 7)",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return orders, users
}

// testDuplicateColumns: two result columns with the same name are an error
// naming the column and its positions, on every destination, unless the
// columns are aliased onto a prefixed embedded struct.
func testDuplicateColumns(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	orders, users := ordersTables(t, m, tg)
	ctx := context.Background()
	from := " FROM " + orders + " o JOIN " + users + " u ON u.id = o.user_id ORDER BY o.id"
	dup := "SELECT o.id, o.user_id, u.id, u.email" + from

	check := func(what string, err error, first, second int) {
		t.Helper()
		var se *dbm.ScanError
		if !errors.As(err, &se) || !errors.Is(err, dbm.ErrDuplicateColumn) {
			t.Errorf("%s: %v, want a *dbm.ScanError matching ErrDuplicateColumn", what, err)
			return
		}
		if se.Column != "id" || se.Other != first || se.Index != second {
			t.Errorf("%s: column %q at %d and %d, want \"id\" at %d and %d", what, se.Column, se.Other, se.Index, first, second)
		}
	}
	type flat struct {
		order
		user
	}
	var rows []flat
	check("ExecuteQuery", m.ExecuteQuery(ctx, &rows, dup), 0, 2)
	var one flat
	check("Get", m.Get(ctx, &one, dup), 0, 2)
	if one != (flat{}) {
		t.Errorf("Get stored %+v after the error", one)
	}
	_, err := dbm.Select[map[string]any](ctx, m, dup)
	check("Select[map[string]any]", err, 0, 2)
	n := 0
	for _, err := range dbm.Iter[*flat](ctx, m, dup) {
		check("Iter", err, 0, 2)
		n++
	}
	if n != 1 {
		t.Errorf("Iter yielded %d times, want once (the error)", n)
	}

	type prefixed struct {
		order
		user `db:"user"`
	}
	aliased := `SELECT o.id, o.user_id, u.id AS "user.id", u.email AS "user.email"` + from
	got, err := dbm.Select[prefixed](ctx, m, aliased)
	want := prefixed{order{1, 7}, user{7, "ada@example.com"}}
	if err != nil || len(got) != 2 || got[0] != want || got[1].order.ID != 2 {
		t.Errorf("Select with aliases onto a prefixed embedded struct = %+v, %v; want %+v first", got, err, want)
	}
	assertIdle(t, m)
}
