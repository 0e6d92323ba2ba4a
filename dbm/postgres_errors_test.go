package dbm_test

// Error classes, context deadlines and scan errors against the shared PostgreSQL server (lib/pq); the
// helpers (pgOpen, pgCreateUsers, ...) are in postgres_test.go.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgClassSentinels are the sentinels a database error is checked against:
// it must match exactly the one of its class.
var pgClassSentinels = []error{
	dbm.ErrNotFound, dbm.ErrUniqueViolation, dbm.ErrForeignKeyViolation, dbm.ErrNotNullViolation,
	dbm.ErrCheckViolation, dbm.ErrSerialization, dbm.ErrDeadlock, dbm.ErrLockTimeout, dbm.ErrConnection,
	dbm.ErrTooManyConnections, dbm.ErrPoolTimeout, dbm.ErrTimeout, dbm.ErrCanceled, dbm.ErrSyntax,
	dbm.ErrUndefinedObject, dbm.ErrPermission, dbm.ErrDataException, dbm.ErrReadOnly, dbm.ErrCommitUnknown,
	dbm.ErrClosed, dbm.ErrLeaked, dbm.ErrConfig, dbm.ErrInvalidArgument,
}

// TestPostgresErrorClasses provokes real server errors and checks their
// class, their SQLSTATE, and that *pq.Error stays reachable.
func TestPostgresErrorClasses(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	for _, ddl := range []string{
		`CREATE TABLE parents (id BIGINT PRIMARY KEY)`,
		`CREATE TABLE children (
			id        BIGINT PRIMARY KEY,
			parent_id BIGINT REFERENCES parents (id),
			email     TEXT UNIQUE,
			name      TEXT NOT NULL,
			qty       INT CHECK (qty > 0)
		)`,
		`INSERT INTO parents (id) VALUES (1)`,
		`INSERT INTO children (id, parent_id, email, name, qty) VALUES (1, 1, 'taken@example.com', 'first', 1)`,
	} {
		if _, err := m.Exec(ctx, ddl); err != nil {
			t.Fatalf("setup %q: %v", ddl, err)
		}
	}

	const insert = "INSERT INTO children (id, parent_id, email, name, qty) VALUES (?, ?, ?, ?, ?)"
	tests := []struct {
		name   string
		query  bool // run with ExecuteQuery instead of Exec
		stmt   string
		args   []any
		want   error
		class  dbm.Class
		code   string
		echoed bool // the server's message quotes the offending value
	}{
		{"unique email", false, insert, []any{2, 1, "taken@example.com", "second", 1}, dbm.ErrUniqueViolation, dbm.ClassUniqueViolation, "23505", false},
		{"duplicate primary key", false, insert, []any{1, 1, "new@example.com", "second", 1}, dbm.ErrUniqueViolation, dbm.ClassUniqueViolation, "23505", false},
		{"foreign key", false, insert, []any{3, 99, "fk@example.com", "third", 1}, dbm.ErrForeignKeyViolation, dbm.ClassForeignKeyViolation, "23503", false},
		{"not null", false, insert, []any{4, 1, "nn@example.com", nil, 1}, dbm.ErrNotNullViolation, dbm.ClassNotNullViolation, "23502", false},
		{"check", false, insert, []any{5, 1, "check@example.com", "fifth", 0}, dbm.ErrCheckViolation, dbm.ClassCheckViolation, "23514", false},
		{"syntax", false, "SELEC 1", nil, dbm.ErrSyntax, dbm.ClassSyntax, "42601", false},
		{"undefined table", true, "SELECT * FROM no_such_table", nil, dbm.ErrUndefinedObject, dbm.ClassUndefinedObject, "42P01", false},
		{"undefined column", true, "SELECT no_such_column FROM children", nil, dbm.ErrUndefinedObject, dbm.ClassUndefinedObject, "42703", false},
		{"undefined function", true, "SELECT no_such_function()", nil, dbm.ErrUndefinedObject, dbm.ClassUndefinedObject, "42883", false},
		{"division by zero", true, "SELECT 1 / (qty - 1) FROM children", nil, dbm.ErrDataException, dbm.ClassDataException, "22012", false},
		{"invalid integer text", true, "SELECT ?::int", []any{"not a number"}, dbm.ErrDataException, dbm.ClassDataException, "22P02", true},
		{"integer out of range", true, "SELECT 2147483647::int + ?::int", []any{1}, dbm.ErrDataException, dbm.ClassDataException, "22003", false},
	}
	wantCounts := map[string]uint64{}
	for _, tc := range tests {
		wantCounts[tc.class.String()]++
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.query {
				var out []int64
				err = m.ExecuteQuery(ctx, &out, tc.stmt, tc.args...)
			} else {
				_, err = m.Exec(ctx, tc.stmt, tc.args...)
			}
			if err == nil {
				t.Fatalf("%q succeeded, want an error", tc.stmt)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v does not match %v", err, tc.want)
			}
			for _, s := range pgClassSentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			if c := dbm.Classify(err); c != tc.class {
				t.Errorf("Classify = %v, want %v", c, tc.class)
			}
			var pqErr *pq.Error
			if !errors.As(err, &pqErr) {
				t.Fatalf("errors.As(%v, *pq.Error) = false; the driver's error must stay reachable", err)
			}
			if string(pqErr.Code) != tc.code {
				t.Errorf("pq.Error.Code = %s (%s), want %s", pqErr.Code, pqErr.Message, tc.code)
			}
			var dbmErr *dbm.Error
			if !errors.As(err, &dbmErr) || dbmErr.Code != tc.code || dbmErr.Class != tc.class {
				t.Errorf("*dbm.Error = %+v, want Code %s Class %v", dbmErr, tc.code, tc.class)
			}
			for _, a := range tc.args {
				// The manager adds the statement to the message, never the
				// values bound to it.
				if s, ok := a.(string); ok && !tc.echoed && strings.Contains(err.Error(), s) {
					t.Errorf("error text %q contains the argument value %q", err, s)
				}
			}
			pgWantIdle(t, m)
		})
	}
	if got := m.Stats().ErrorsByClass; !reflect.DeepEqual(got, wantCounts) {
		t.Errorf("Stats().ErrorsByClass = %v, want %v", got, wantCounts)
	}
}

// TestPostgresContextTimeout checks that a statement outliving the caller's
// deadline (or the server's statement_timeout) fails with dbm.ErrTimeout, a
// canceled one with dbm.ErrCanceled, and that the pool recovers: the
// connection is given back and the next statement works.
func TestPostgresContextTimeout(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	const sleep = "SELECT pg_sleep(5)" // far longer than any limit below

	tests := []struct {
		name string
		run  func() error
		want error
		code string // the SQLSTATE, when the server reports the error
	}{
		{"context deadline", func() error {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := m.Exec(ctx, sleep)
			return err
		}, dbm.ErrTimeout, ""},
		{"context deadline in ExecuteQuery", func() error {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			var out []string
			return m.ExecuteQuery(ctx, &out, "SELECT pg_sleep(5)::text")
		}, dbm.ErrTimeout, ""},
		{"context canceled", func() error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := time.AfterFunc(100*time.Millisecond, cancel)
			defer stop.Stop()
			_, err := m.Exec(ctx, sleep)
			return err
		}, dbm.ErrCanceled, ""},
		{"server statement_timeout", func() error {
			return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '100ms'"); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, sleep)
				return err
			})
		}, dbm.ErrTimeout, "57014"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want one matching %v", err, tc.want)
			}
			for _, s := range []error{dbm.ErrTimeout, dbm.ErrCanceled, dbm.ErrConnection} {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			if tc.code != "" {
				var pqErr *pq.Error
				if !errors.As(err, &pqErr) || string(pqErr.Code) != tc.code {
					t.Errorf("error %v: want a *pq.Error with code %s", err, tc.code)
				}
			}
			pgWantIdle(t, m)
			var one int64
			if err := m.Get(ctx, &one, "SELECT 1"); err != nil || one != 1 {
				t.Errorf("the next statement = %d, %v; want 1, nil", one, err)
			}
			pgWantIdle(t, m)
		})
	}
}

// pgUserNoEmail has no field for the users table's email column.
type pgUserNoEmail struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Active bool   `db:"active"`
}

// TestPostgresScanErrors feeds bad rows from the real server to the
// scanner: NULL into a field that cannot hold it, a column with no field,
// and a value that does not convert.
func TestPostgresScanErrors(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	for _, stmt := range []string{
		`CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT, active BOOLEAN NOT NULL)`,
		`INSERT INTO users VALUES (1, 'Ada Lovelace', 'ada@example.com', true), (2, NULL, 'nameless@example.com', true)`,
	} {
		if _, err := m.Exec(ctx, stmt); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}

	type nullable struct {
		ID   int64   `db:"id"`
		Name *string `db:"name"`
	}
	type numericID struct {
		ID int64 `db:"id"`
	}
	tests := []struct {
		name    string
		run     func() error
		want    error  // ErrNullValue or ErrUnknownColumn; nil for a conversion error
		column  string // the column the error must name
		mention string // a Go type or field the message must name
	}{
		{"NULL into string field, ExecuteQuery", func() error {
			users := []pgUser{{ID: 99}}
			err := m.ExecuteQuery(ctx, &users, pgSeedQuery)
			if err != nil && len(users) != 0 {
				return fmt.Errorf("destination holds %d rows after an error, want 0: %w", len(users), err)
			}
			return err
		}, dbm.ErrNullValue, "name", "pgUser.Name (string)"},
		{"NULL into string field, Get", func() error {
			var u pgUser
			return m.Get(ctx, &u, "SELECT * FROM users WHERE id = ?", 2)
		}, dbm.ErrNullValue, "name", "pgUser.Name"},
		{"NULL into string, One[string]", func() error {
			_, err := dbm.One[string](ctx, m, "SELECT name FROM users WHERE id = ?", 2)
			return err
		}, dbm.ErrNullValue, "name", "string"},
		{"NULL into string field, Iter", func() error {
			for _, err := range dbm.Iter[pgUser](ctx, m, "SELECT * FROM users ORDER BY id") {
				if err != nil {
					return err
				}
			}
			return nil
		}, dbm.ErrNullValue, "name", "pgUser.Name"},
		{"NULL into string field, Rows.StructScan", func() error {
			rows, err := m.Query(ctx, "SELECT * FROM users WHERE id = ?", 2)
			if err != nil {
				return err
			}
			defer rows.Close()
			if !rows.Next() {
				return fmt.Errorf("no row: %v", rows.Err())
			}
			var u pgUser
			return rows.StructScan(&u)
		}, dbm.ErrNullValue, "name", "pgUser.Name"},
		{"unknown column, ExecuteQuery", func() error {
			var users []pgUserNoEmail
			return m.ExecuteQuery(ctx, &users, "SELECT * FROM users WHERE id = 1")
		}, dbm.ErrUnknownColumn, "email", "dbm_test.pgUserNoEmail"},
		{"unknown column, One", func() error {
			_, err := dbm.One[pgUserNoEmail](ctx, m, "SELECT id, email FROM users WHERE id = 1")
			return err
		}, dbm.ErrUnknownColumn, "email", "dbm_test.pgUserNoEmail"},
		{"text into int64", func() error {
			_, err := dbm.One[numericID](ctx, m, "SELECT name AS id FROM users WHERE id = 1")
			return err
		}, nil, "id", "numericID.ID (int64)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			var se *dbm.ScanError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a *dbm.ScanError", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v does not match %v", err, tc.want)
			}
			if tc.want == nil && (errors.Is(err, dbm.ErrNullValue) || errors.Is(err, dbm.ErrUnknownColumn)) {
				t.Errorf("conversion error %v matches ErrNullValue or ErrUnknownColumn", err)
			}
			if se.Column != tc.column {
				t.Errorf("ScanError.Column = %q, want %q", se.Column, tc.column)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(tc.column)) || !strings.Contains(msg, tc.mention) {
				t.Errorf("message %q does not name column %q and %q", msg, tc.column, tc.mention)
			}
			if dbm.Classify(err) != dbm.ClassScan {
				t.Errorf("Classify = %v, want %v", dbm.Classify(err), dbm.ClassScan)
			}
			pgWantIdle(t, m)
		})
	}

	t.Run("NULL into a pointer field", func(t *testing.T) {
		got, err := dbm.Select[nullable](ctx, m, "SELECT id, name FROM users ORDER BY id")
		if err != nil || len(got) != 2 || got[0].Name == nil || *got[0].Name != "Ada Lovelace" || got[1].Name != nil {
			t.Errorf("Select = %+v, %v; want Ada Lovelace, then a nil name", got, err)
		}
	})
}
