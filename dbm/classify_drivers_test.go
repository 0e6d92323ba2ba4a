package dbm_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// constraintCases run against a real server: each statement must fail with
// the given class. The schema is created by the caller.
var constraintCases = []struct {
	name  string
	query string
	want  error
}{
	{"unique", "INSERT INTO cls_child (id, parent_id, qty) VALUES (1, 1, 1)", dbm.ErrUniqueViolation},
	{"foreign key", "INSERT INTO cls_child (id, parent_id, qty) VALUES (2, 999, 1)", dbm.ErrForeignKeyViolation},
	{"not null", "INSERT INTO cls_child (id, parent_id, qty) VALUES (3, 1, NULL)", dbm.ErrNotNullViolation},
	{"check", "INSERT INTO cls_child (id, parent_id, qty) VALUES (4, 1, -5)", dbm.ErrCheckViolation},
	{"syntax", "INSERT INTO cls_child VALUES (", dbm.ErrSyntax},
	{"undefined table", "SELECT * FROM cls_no_such_table", dbm.ErrUndefinedObject},
}

func runConstraintCases(t *testing.T, m *dbm.Manager) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		"DROP TABLE IF EXISTS cls_child",
		"DROP TABLE IF EXISTS cls_parent",
		"CREATE TABLE cls_parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE cls_child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES cls_parent(id), qty INTEGER NOT NULL CHECK (qty > 0))",
		"INSERT INTO cls_parent (id) VALUES (1)",
		"INSERT INTO cls_child (id, parent_id, qty) VALUES (1, 1, 1)",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = m.Exec(ctx, "DROP TABLE IF EXISTS cls_child")
		_, _ = m.Exec(ctx, "DROP TABLE IF EXISTS cls_parent")
	})
	for _, tc := range constraintCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Exec(ctx, tc.query)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v (class %v), want %v", err, dbm.Classify(err), tc.want)
			}
		})
	}
}

func TestSQLiteErrorClasses(t *testing.T) {
	runConstraintCases(t, newSQLite(t))
}

func TestMySQLErrorClasses(t *testing.T) {
	const addr = "127.0.0.1:3306"
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		missingServer(t, "MariaDB at "+addr, err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Database: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() }) // after runConstraintCases' cleanup drops its tables
	runConstraintCases(t, m)

	_, err = m.Exec(ctx, "INSERT INTO cls_child (id, parent_id, qty) VALUES (1, 1, 1)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 {
		t.Errorf("driver error not reachable: %v", err)
	}
	var de *dbm.Error
	if !errors.As(err, &de) || de.Code != "1062" {
		t.Errorf("code = %+v, want 1062", de)
	}
}
