package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// The orders service of issue 15: two tables with an "id" column each.
type dupOrder struct {
	ID     int64 `db:"id"`
	UserID int64 `db:"user_id"`
}

type dupUser struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
}

// orderWithUser flattens both: "id" is ambiguous.
type orderWithUser struct {
	dupOrder
	dupUser
}

// orderWithPrefixedUser disambiguates: the user's columns are "user.id",
// "user.email".
type orderWithPrefixedUser struct {
	dupOrder
	dupUser `db:"user"`
}

func seedOrders(t *testing.T, m *dbm.Manager) {
	t.Helper()
	for _, q := range []string{
		"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL)",
		"INSERT INTO users VALUES (7, 'ada@example.com')",
		"INSERT INTO orders VALUES (1, 7), (2, 7)",
	} {
		if _, err := m.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	dupJoin    = "SELECT o.id, o.user_id, u.id, u.email FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id"
	prefixJoin = `SELECT o.id, o.user_id, u.id AS "user.id", u.email AS "user.email" FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id`
)

// wantDuplicate checks that err is the ScanError for columns first and
// second (from 0) named col.
func wantDuplicate(t *testing.T, what string, err error, col string, first, second int) {
	t.Helper()
	var se *dbm.ScanError
	if !errors.As(err, &se) || !errors.Is(err, dbm.ErrDuplicateColumn) {
		t.Fatalf("%s: %v, want a *dbm.ScanError matching ErrDuplicateColumn", what, err)
	}
	if se.Column != col || se.Other != first || se.Index != second {
		t.Errorf("%s: ScanError{Column: %q, Other: %d, Index: %d}, want %q, %d, %d", what, se.Column, se.Other, se.Index, col, first, second)
	}
	msg := err.Error()
	for _, want := range []string{`"` + col + `"`, "positions", " " + itoa(first+1) + " and " + itoa(second+1)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: message %q does not contain %q", what, msg, want)
		}
	}
	if errors.Is(err, dbm.ErrUnknownColumn) || errors.Is(err, dbm.ErrNullValue) {
		t.Errorf("%s: %v also matches another scan sentinel", what, err)
	}
}

func itoa(n int) string { return string(rune('0' + n)) } // single digits suffice here

func TestDuplicateColumnsAreAnError(t *testing.T) {
	ctx := context.Background()
	for _, lenient := range []bool{false, true} {
		name := "strict"
		if lenient {
			name = "IgnoreUnknownColumns" // skipping unknown columns does not hide duplicates
		}
		t.Run(name, func(t *testing.T) {
			m := newSQLite(t)
			seedOrders(t, m)
			ctx := ctx
			if lenient {
				ctx = dbm.IgnoreUnknownColumns(ctx)
			}
			// Three times each: the statement cache, the plan cache and the
			// statement's plan hint must not let a later call through.
			for range 3 {
				var s []orderWithUser
				wantDuplicate(t, "ExecuteQuery(*[]T)", m.ExecuteQuery(ctx, &s, dupJoin), "id", 0, 2)
				if len(s) != 0 {
					t.Errorf("ExecuteQuery left %d rows in dest", len(s))
				}
				var ps []*orderWithUser
				wantDuplicate(t, "ExecuteQuery(*[]*T)", m.ExecuteQuery(ctx, &ps, dupJoin), "id", 0, 2)
				var ms []map[string]any
				wantDuplicate(t, "ExecuteQuery(*[]map)", m.ExecuteQuery(ctx, &ms, dupJoin), "id", 0, 2)
				var o orderWithUser
				wantDuplicate(t, "Get", m.Get(ctx, &o, dupJoin), "id", 0, 2)
				if o != (orderWithUser{}) {
					t.Errorf("Get stored %+v", o)
				}
				var mp map[string]any
				wantDuplicate(t, "Get(map)", m.Get(ctx, &mp, dupJoin), "id", 0, 2)
				_, err := dbm.Select[orderWithUser](ctx, m, dupJoin)
				wantDuplicate(t, "Select", err, "id", 0, 2)
				_, err = dbm.One[*orderWithUser](ctx, m, dupJoin)
				wantDuplicate(t, "One[*T]", err, "id", 0, 2)
				_, err = dbm.Select[map[string]any](ctx, m, dupJoin)
				wantDuplicate(t, "Select[map]", err, "id", 0, 2)
				for _, iterMaps := range []bool{false, true} {
					n := 0
					var err error
					if iterMaps {
						for _, err = range dbm.Iter[map[string]any](ctx, m, dupJoin) {
							n++
						}
					} else {
						for _, err = range dbm.Iter[orderWithUser](ctx, m, dupJoin) {
							n++
						}
					}
					if n != 1 {
						t.Errorf("Iter (maps %v) yielded %d times, want once (the error)", iterMaps, n)
					}
					wantDuplicate(t, "Iter", err, "id", 0, 2)
				}
				rows, err := m.Query(ctx, dupJoin)
				if err != nil {
					t.Fatal(err)
				}
				if !rows.Next() {
					t.Fatal("no row")
				}
				wantDuplicate(t, "StructScan", rows.StructScan(&o), "id", 0, 2)
				wantDuplicate(t, "StructScan(map)", rows.StructScan(&mp), "id", 0, 2)
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if s := m.Stats(); s.InUse != 0 {
				t.Errorf("InUse = %d after the calls", s.InUse)
			}
		})
	}
}

func TestDuplicateColumnsOtherShapes(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedOrders(t, m)
	type nick struct {
		ID   int64          `db:"id"`
		Nick sql.NullString `db:"nick"`
	}
	for _, c := range []struct {
		name, query   string
		get           func(q string) error
		col           string
		first, second int
	}{
		// The name is matched ignoring case: "ID" and "id" are one field.
		{"case differs", "SELECT id AS ID, user_id, id FROM orders", func(q string) error { var o dupOrder; return m.Get(ctx, &o, q) }, "id", 0, 2},
		// A sql.Scanner struct and a field inside it.
		{"field inside a scanned struct", `SELECT id, 'x' AS nick, 1 AS "nick.valid" FROM orders`, func(q string) error { var n nick; return m.Get(ctx, &n, q) }, "nick.valid", 1, 2},
		{"pointer to struct", `SELECT o.id, u.id AS "u.id", u.id AS "u.ID" FROM orders o JOIN users u ON u.id = o.user_id`,
			func(q string) error {
				var v struct {
					ID int64    `db:"id"`
					U  *dupUser `db:"u"`
				}
				return m.Get(ctx, &v, q)
			}, "u.ID", 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantDuplicate(t, c.name, c.get(c.query), c.col, c.first, c.second)
		})
	}
	// Maps keep names as the driver gives them: "ID" and "id" are two keys.
	if _, err := dbm.Select[map[string]any](ctx, m, "SELECT id AS ID, id FROM orders"); err != nil {
		t.Errorf("map with ID and id: %v", err)
	}
}

func TestDuplicateColumnsMessage(t *testing.T) {
	m := newSQLite(t)
	seedOrders(t, m)
	var s []orderWithUser
	err := m.ExecuteQuery(context.Background(), &s, dupJoin)
	const want = `dbm: scan: column "id" appears twice in the result (positions 1 and 3) and both would go to orderWithUser.dupOrder.ID`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), `AS "user.id"`) {
		t.Errorf("error = %v\nwant it to start with %s and suggest an alias", err, want)
	}
}

func TestPrefixedEmbeddedStructDisambiguates(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedOrders(t, m)
	want := []orderWithPrefixedUser{
		{dupOrder{1, 7}, dupUser{7, "ada@example.com"}},
		{dupOrder{2, 7}, dupUser{7, "ada@example.com"}},
	}
	got, err := dbm.Select[orderWithPrefixedUser](ctx, m, prefixJoin)
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Select = %+v, %v; want %+v", got, err, want)
	}
	var s []*orderWithPrefixedUser
	if err := m.ExecuteQuery(ctx, &s, prefixJoin); err != nil || len(s) != 2 || *s[1] != want[1] {
		t.Errorf("ExecuteQuery(*[]*T) = %v, %v", s, err)
	}
	// The prefix needs the aliases: without them the second "id" is still
	// the order's, and "email" is no column of the struct.
	var o orderWithPrefixedUser
	wantDuplicate(t, "Get of the unaliased join into the prefixed struct", m.Get(ctx, &o, dupJoin), "id", 0, 2)
	if err := m.Get(ctx, &o, "SELECT o.id, u.email FROM orders o JOIN users u ON u.id = o.user_id"); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Errorf("Get of an unaliased email into the prefixed struct = %v, want ErrUnknownColumn", err)
	}
	// An embedded pointer with the prefix stays nil on the missing side of
	// a LEFT JOIN; a named field takes its own prefix.
	if _, err := m.Exec(ctx, "INSERT INTO orders VALUES (3, 99)"); err != nil {
		t.Fatal(err)
	}
	type orderMaybeUser struct {
		dupOrder
		*dupUser `db:"user"`
	}
	left, err := dbm.Select[orderMaybeUser](ctx, m, `SELECT o.id, o.user_id, u.id AS "user.id", u.email AS "user.email"
		FROM orders o LEFT JOIN users u ON u.id = o.user_id ORDER BY o.id`)
	if err != nil || len(left) != 3 || left[0].dupUser == nil || left[0].dupUser.ID != 7 || left[0].dupOrder.ID != 1 || left[2].dupUser != nil {
		t.Errorf("LEFT JOIN into an embedded *dupUser with a prefix = %+v, %v", left, err)
	}
	type orderBuyer struct {
		dupOrder
		Buyer dupUser `db:"buyer"`
	}
	b, err := dbm.One[orderBuyer](ctx, m, `SELECT o.id, o.user_id, u.id AS "buyer.id", u.email AS "buyer.email"
		FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id`)
	if err != nil || b.ID != 1 || b.Buyer.ID != 7 || b.Buyer.Email != "ada@example.com" {
		t.Errorf("named field with a prefix = %+v, %v", b, err)
	}
	var ms []map[string]any
	if err := m.ExecuteQuery(ctx, &ms, prefixJoin); err != nil || len(ms) != 2 || ms[0]["user.id"] != int64(7) || ms[0]["id"] != int64(1) {
		t.Errorf("ExecuteQuery(*[]map) = %v, %v", ms, err)
	}
}
