package dbm_test

// Integration tests against the shared PostgreSQL server (lib/pq, driver
// "postgres"). Every test gets a schema of its own (see pgOpen), so tables
// can be called what the seed document calls them ("users") and the tests
// still run in parallel.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgUser is a row of the seed document's users table.
type pgUser struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Email  string `db:"email"`
	Active bool   `db:"active"`
}

var pgSeedUsers = []pgUser{
	{1, "Ada Lovelace", "ada@example.com", true},
	{2, "Charles Babbage", "charles@example.com", false},
	{3, "Grace Hopper", "grace@example.com", true},
	{4, "Alan Turing", "alan@example.com", true},
}

// pgSeedQuery is the seed document's query, trailing semicolon included.
const pgSeedQuery = "SELECT * FROM users WHERE active = true;"

func pgActiveUsers() []pgUser {
	return slices.DeleteFunc(slices.Clone(pgSeedUsers), func(u pgUser) bool { return !u.Active })
}

func pgByID(a, b pgUser) int { return int(a.ID - b.ID) }

// pgOpen opens a manager on the shared server whose search_path is a new,
// empty schema. The manager is closed and the schema dropped (with
// everything in it) when the test ends.
func pgOpen(t *testing.T, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	cfg := postgresConfig(t)
	schema := pgSchemaName(t)
	cfg.Params = map[string]string{"search_path": schema, "application_name": "dbm-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := m.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA: %v", err)
	}
	t.Cleanup(func() { // runs before Close
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := m.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
	})
	var current string
	if err := m.Get(ctx, &current, "SELECT current_schema()"); err != nil || current != schema {
		t.Fatalf("Params[search_path] not applied: current_schema() = %q, %v; want %q", current, err, schema)
	}
	return m
}

// pgSchemaName returns a schema name unique to this run of the test.
func pgSchemaName(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, t.Name())
	return "dbmt_" + name[:min(len(name), 40)] + "_" + pgRandom(4)
}

func pgRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pgCreateUsers creates the seed document's users table in m's schema and
// inserts pgSeedUsers in one transaction, with '?' placeholders.
func pgCreateUsers(t *testing.T, ctx context.Context, m *dbm.Manager) {
	t.Helper()
	if _, err := m.Exec(ctx, `CREATE TABLE users (
		id     BIGINT PRIMARY KEY,
		name   TEXT NOT NULL,
		email  TEXT NOT NULL UNIQUE,
		active BOOLEAN NOT NULL
	)`); err != nil {
		t.Fatalf("CREATE TABLE users: %v", err)
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		for _, u := range pgSeedUsers {
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, name, email, active) VALUES (?, ?, ?, ?)`, u.ID, u.Name, u.Email, u.Active); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed users: %v", err)
	}
}

// pgWantIdle fails the test when the pool still lends out a connection: every
// call must give its connection back when it returns.
func pgWantIdle(t *testing.T, m *dbm.Manager) {
	t.Helper()
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("Stats().InUse = %d, want 0 (a connection was not given back to the pool)", s.InUse)
	}
}

// pgUserExists reports whether users holds id, read through the pool (so
// outside any transaction).
func pgUserExists(t *testing.T, ctx context.Context, m *dbm.Manager, id int64) bool {
	t.Helper()
	var n int64
	if err := m.Get(ctx, &n, "SELECT count(*) FROM users WHERE id = ?", id); err != nil {
		t.Fatalf("count user %d: %v", id, err)
	}
	return n == 1
}

// TestPostgresSeedFlow runs the seed document's example: create a users
// table, insert users, then "SELECT * FROM users WHERE active = true;" into
// every kind of destination.
func TestPostgresSeedFlow(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	pgCreateUsers(t, ctx, m)

	active := pgActiveUsers()
	var activeMaps []map[string]any
	var activeNames []string
	var activeIDs []int64
	for _, u := range active {
		activeMaps = append(activeMaps, map[string]any{"id": u.ID, "name": u.Name, "email": u.Email, "active": u.Active})
		activeNames = append(activeNames, u.Name)
		activeIDs = append(activeIDs, u.ID)
	}

	// Each destination starts with a stale element: ExecuteQuery must
	// replace the contents, not append to them.
	structs := []pgUser{{ID: 99, Name: "stale"}}
	ptrs := []*pgUser{{ID: 99, Name: "stale"}}
	maps := []map[string]any{{"stale": true}}
	names := []string{"stale"}
	ids := []int64{99}
	empty := []pgUser{{ID: 99, Name: "stale"}}
	var nilSlice []pgUser

	tests := []struct {
		name  string
		query string
		dest  any
		got   func() any // the destination's contents, in id order
		want  any
	}{
		{"*[]User", pgSeedQuery, &structs, func() any {
			slices.SortFunc(structs, pgByID)
			return structs
		}, active},
		{"*[]*User", pgSeedQuery, &ptrs, func() any {
			var out []pgUser
			for _, p := range ptrs {
				if p == nil {
					return "nil element"
				}
				out = append(out, *p)
			}
			slices.SortFunc(out, pgByID)
			return out
		}, active},
		{"*[]map[string]any", pgSeedQuery, &maps, func() any {
			slices.SortFunc(maps, func(a, b map[string]any) int {
				x, _ := a["id"].(int64)
				y, _ := b["id"].(int64)
				return int(x - y)
			})
			return maps
		}, activeMaps},
		{"*[]string", "SELECT name FROM users WHERE active = true ORDER BY id;", &names, func() any { return names }, activeNames},
		{"*[]int64", "SELECT id FROM users WHERE active = true ORDER BY id;\n", &ids, func() any { return ids }, activeIDs},
		{"no rows, stale contents", "SELECT * FROM users WHERE id < 0;", &empty, func() any { return empty }, []pgUser{}},
		{"no rows, nil slice", "SELECT * FROM users WHERE id < 0", &nilSlice, func() any { return nilSlice }, []pgUser{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.ExecuteQuery(ctx, tc.dest, tc.query); err != nil {
				t.Fatalf("ExecuteQuery(%q): %v", tc.query, err)
			}
			if got := tc.got(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ExecuteQuery(%q) into %s:\n got %#v\nwant %#v", tc.query, tc.name, got, tc.want)
			}
			pgWantIdle(t, m)
		})
	}

	s := m.Stats()
	if s.Statements == 0 || s.Transactions != 1 || s.Commits != 1 {
		t.Errorf("Stats after the seed flow: Statements=%d Transactions=%d Commits=%d; want >0, 1, 1", s.Statements, s.Transactions, s.Commits)
	}
}

// TestPostgresPlaceholders checks that '?' is rebound to $n, that the
// driver's own $n works unchanged, and that a '?' which is not a placeholder
// (in literals, identifiers, comments, or an operator next to $n) is left
// alone.
func TestPostgresPlaceholders(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	pgCreateUsers(t, ctx, m)

	tests := []struct {
		name  string
		query string
		args  []any
		want  string
	}{
		{"question marks rebound", "SELECT name FROM users WHERE id = ? AND active = ?", []any{3, true}, "Grace Hopper"},
		{"native $n", "SELECT name FROM users WHERE id = $1 AND active = $2", []any{3, true}, "Grace Hopper"},
		{"native $n reused", "SELECT $1::text || '-' || $1::text", []any{"x"}, "x-x"},
		{"native $n out of order", "SELECT $2::text || $1::text", []any{"a", "b"}, "ba"},
		{"trailing semicolons", "SELECT name FROM users WHERE id = ? ;; \n", []any{1}, "Ada Lovelace"},
		{"? in string literal", "SELECT '?' || name FROM users WHERE id = ?", []any{1}, "?Ada Lovelace"},
		{"? in quoted identifier", `SELECT name AS "who?" FROM users WHERE id = ?`, []any{4}, "Alan Turing"},
		{"? in line comment", "SELECT name -- who?\nFROM users WHERE id = ?", []any{4}, "Alan Turing"},
		{"? in block comment", "SELECT /* who? */ name FROM users WHERE id = ?", []any{4}, "Alan Turing"},
		{"? in dollar quotes", "SELECT $$?$$ || $tag$?$tag$ || name FROM users WHERE id = ?", []any{2}, "??Charles Babbage"},
		{"jsonb ? operator with $n", "SELECT CASE WHEN $1::jsonb ? 'a' THEN 'yes' ELSE 'no' END", []any{`{"a": 1}`}, "yes"},
		{"escaped quote in E string", `SELECT E'it\'s ' || name FROM users WHERE id = ?`, []any{1}, "it's Ada Lovelace"},
		{"doubled quote in string", `SELECT 'it''s ' || name FROM users WHERE id = ?`, []any{1}, "it's Ada Lovelace"},
		// standard_conforming_strings is on (the default since 9.1): a
		// backslash in a plain literal is an ordinary character.
		{"backslash ending a plain string", `SELECT 'C:\' || name FROM users WHERE id = ?`, []any{1}, `C:\Ada Lovelace`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if err := m.Get(ctx, &got, tc.query, tc.args...); err != nil {
				t.Fatalf("Get(%q): %v", tc.query, err)
			}
			if got != tc.want {
				t.Errorf("Get(%q) = %q, want %q", tc.query, got, tc.want)
			}
		})
	}
}

// TestPostgresGetAndOne checks the one-row calls: the first row when there
// is one, and an error matching both dbm.ErrNotFound and sql.ErrNoRows when
// there is none, on the manager and inside a transaction.
func TestPostgresGetAndOne(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	pgCreateUsers(t, ctx, m)
	const byID = "SELECT * FROM users WHERE id = ?"
	grace := pgSeedUsers[2]

	type call func(q dbm.Querier, query string, args ...any) (any, error)
	getUser := func(q dbm.Querier, query string, args ...any) (any, error) {
		u := pgUser{ID: 99, Name: "stale"}
		err := q.Get(ctx, &u, query, args...)
		return u, err
	}
	getName := func(q dbm.Querier, query string, args ...any) (any, error) {
		var s string
		err := q.Get(ctx, &s, strings.Replace(query, "*", "name", 1), args...)
		return s, err
	}
	oneUser := func(q dbm.Querier, query string, args ...any) (any, error) {
		return dbm.One[pgUser](ctx, q, query, args...)
	}
	onePtr := func(q dbm.Querier, query string, args ...any) (any, error) {
		p, err := dbm.One[*pgUser](ctx, q, query, args...)
		if p == nil {
			return nil, err
		}
		return *p, err
	}
	oneMap := func(q dbm.Querier, query string, args ...any) (any, error) {
		mp, err := dbm.One[map[string]any](ctx, q, query, args...)
		if mp == nil {
			return nil, err
		}
		return mp["name"], err
	}

	tests := []struct {
		name string
		call call
		want any // for id 3
	}{
		{"Get struct", getUser, grace},
		{"Get scalar", getName, grace.Name},
		{"One[User]", oneUser, grace},
		{"One[*User]", onePtr, grace},
		{"One[map[string]any]", oneMap, grace.Name},
	}
	for _, tc := range tests {
		for _, inTx := range []bool{false, true} {
			name := tc.name
			if inTx {
				name += " in tx"
			}
			t.Run(name, func(t *testing.T) {
				run := func(q dbm.Querier) {
					got, err := tc.call(q, byID, 3)
					if err != nil || !reflect.DeepEqual(got, tc.want) {
						t.Errorf("id 3: got %#v, %v; want %#v", got, err, tc.want)
					}
					_, err = tc.call(q, byID, 42)
					if !errors.Is(err, dbm.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
						t.Errorf("id 42: error %v; want one matching dbm.ErrNotFound and sql.ErrNoRows", err)
					}
					if c := dbm.Classify(err); c != dbm.ClassNotFound {
						t.Errorf("Classify(%v) = %v, want %v", err, c, dbm.ClassNotFound)
					}
				}
				if !inTx {
					run(m)
				} else if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
					run(tx)
					return nil
				}); err != nil {
					t.Fatalf("WithTx: %v (a not-found row must not break the transaction)", err)
				}
				pgWantIdle(t, m)
			})
		}
	}

	t.Run("Get takes the first of several rows", func(t *testing.T) {
		var u pgUser
		if err := m.Get(ctx, &u, "SELECT * FROM users ORDER BY id DESC"); err != nil || u != pgSeedUsers[3] {
			t.Errorf("Get = %+v, %v; want %+v", u, err, pgSeedUsers[3])
		}
		pgWantIdle(t, m)
	})
}

// TestPostgresSelectAndIter covers the generic helpers, including leaving an
// Iter loop early: the rows must be closed and the connection given back.
func TestPostgresSelectAndIter(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	pgCreateUsers(t, ctx, m)
	const activeQuery = "SELECT * FROM users WHERE active = ? ORDER BY id"
	active := pgActiveUsers()

	t.Run("Select[User]", func(t *testing.T) {
		got, err := dbm.Select[pgUser](ctx, m, activeQuery, true)
		if err != nil || !reflect.DeepEqual(got, active) {
			t.Errorf("Select = %+v, %v; want %+v", got, err, active)
		}
	})
	t.Run("Select[*User]", func(t *testing.T) {
		got, err := dbm.Select[*pgUser](ctx, m, activeQuery, true)
		if err != nil || len(got) != len(active) {
			t.Fatalf("Select = %d rows, %v; want %d rows", len(got), err, len(active))
		}
		for i, p := range got {
			if p == nil || *p != active[i] {
				t.Errorf("row %d = %+v, want %+v", i, p, active[i])
			}
		}
	})
	t.Run("Select[string] no rows", func(t *testing.T) {
		got, err := dbm.Select[string](ctx, m, "SELECT name FROM users WHERE id < 0")
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Select = %#v, %v; want an empty, non-nil slice", got, err)
		}
	})
	t.Run("Select error", func(t *testing.T) {
		got, err := dbm.Select[pgUser](ctx, m, "SELECT * FROM no_such_table")
		if !errors.Is(err, dbm.ErrUndefinedObject) || got != nil {
			t.Errorf("Select = %v, %v; want nil, an error matching dbm.ErrUndefinedObject", got, err)
		}
	})
	t.Run("Iter all rows", func(t *testing.T) {
		var got []pgUser
		for u, err := range dbm.Iter[pgUser](ctx, m, activeQuery, true) {
			if err != nil {
				t.Fatalf("Iter: %v", err)
			}
			got = append(got, u)
		}
		if !reflect.DeepEqual(got, active) {
			t.Errorf("Iter = %+v, want %+v", got, active)
		}
		pgWantIdle(t, m)
	})
	t.Run("Iter[*User]", func(t *testing.T) {
		var got []pgUser
		for p, err := range dbm.Iter[*pgUser](ctx, m, activeQuery, true) {
			if err != nil || p == nil {
				t.Fatalf("Iter yielded %v, %v", p, err)
			}
			got = append(got, *p)
		}
		if !reflect.DeepEqual(got, active) {
			t.Errorf("Iter = %+v, want %+v", got, active)
		}
	})
	t.Run("Iter break early", func(t *testing.T) {
		// Many more rows than are read: closing must not wait for, or keep,
		// the rest.
		var got []int64
		for n, err := range dbm.Iter[int64](ctx, m, "SELECT g FROM generate_series(1, ?) AS g ORDER BY g", 100000) {
			if err != nil {
				t.Fatalf("Iter: %v", err)
			}
			got = append(got, n)
			if len(got) == 3 {
				break
			}
		}
		if !slices.Equal(got, []int64{1, 2, 3}) {
			t.Errorf("Iter = %v, want [1 2 3]", got)
		}
		pgWantIdle(t, m)
		if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM users"); err != nil || n != int64(len(pgSeedUsers)) {
			t.Errorf("query after an early break = %d, %v; want %d", n, err, len(pgSeedUsers))
		}
	})
	t.Run("Iter return from inside the loop", func(t *testing.T) {
		first := func() pgUser {
			for u, err := range dbm.Iter[pgUser](ctx, m, activeQuery, true) {
				if err != nil {
					t.Fatalf("Iter: %v", err)
				}
				return u
			}
			return pgUser{}
		}()
		if first != active[0] {
			t.Errorf("first = %+v, want %+v", first, active[0])
		}
		pgWantIdle(t, m)
	})
	t.Run("Iter query error yielded once", func(t *testing.T) {
		var errs []error
		for u, err := range dbm.Iter[pgUser](ctx, m, "SELECT * FROM no_such_table") {
			if err == nil || u != (pgUser{}) {
				t.Errorf("yielded %+v, %v; want a zero value and an error", u, err)
			}
			errs = append(errs, err)
		}
		if len(errs) != 1 || !errors.Is(errs[0], dbm.ErrUndefinedObject) {
			t.Errorf("yielded errors %v; want exactly one matching dbm.ErrUndefinedObject", errs)
		}
		pgWantIdle(t, m)
	})
	t.Run("Iter in a transaction", func(t *testing.T) {
		var got []pgUser
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if _, err := tx.Exec(ctx, "UPDATE users SET active = false WHERE id = ?", 1); err != nil {
				return err
			}
			for u, err := range dbm.Iter[pgUser](ctx, tx, activeQuery, true) {
				if err != nil {
					return err
				}
				got = append(got, u)
			}
			return errors.New("roll back the update")
		})
		if err == nil || err.Error() != "roll back the update" {
			t.Fatalf("WithTx = %v, want the function's error", err)
		}
		if want := active[1:]; !reflect.DeepEqual(got, want) {
			t.Errorf("Iter in tx = %+v, want %+v (the transaction's own update must be visible)", got, want)
		}
		pgWantIdle(t, m)
	})
}
