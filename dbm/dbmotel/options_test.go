package dbmotel

import (
	"errors"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestOperationName(t *testing.T) {
	for _, c := range []struct{ q, want string }{
		{"SELECT 1", "SELECT"},
		{"  \n\tinsert into t values (1)", "insert"},
		{"-- note\nUPDATE t SET n = 1", "UPDATE"},
		{"/* a */ /* b */DELETE FROM t", "DELETE"},
		{"(SELECT 1) UNION (SELECT 2)", "SELECT"},
		{"", ""},
		{"/* unterminated", ""},
		{"-- only a comment", ""},
		{"1", ""},
	} {
		if got := operationName(c.q); got != c.want {
			t.Errorf("operationName(%q) = %q, want %q", c.q, got, c.want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		name         string
		opts         []Option
		system, pool string
		host         string
		port         int
	}{
		{"default", nil, "other_sql", "other_sql", "", 0},
		{"postgres defaults", []Option{WithConfig(dbm.Config{Database: "app"})}, "postgresql", "localhost:5432/app", "localhost", 5432},
		{"mysql", []Option{WithConfig(dbm.Config{Driver: dbm.DriverMySQL, Host: "db", Database: "app"})}, "mysql", "db:3306/app", "db", 3306},
		{"sqlite", []Option{WithConfig(dbm.Config{Driver: dbm.DriverSQLite, Database: "/data/a.db"})}, "sqlite", "/data/a.db", "", 0},
		{"dsn", []Option{WithConfig(dbm.Config{Driver: dbm.DriverPgx, DSN: "postgres://u:pw@h/db"})}, "postgresql", "postgresql", "", 0},
		{"overrides", []Option{WithConfig(dbm.Config{Driver: dbm.DriverMySQL}), WithSystemName("mariadb"), WithServer("m", 3307), WithPoolName("main")}, "mariadb", "main", "m", 3307},
	} {
		o := options{system: "other_sql"}
		for _, opt := range c.opts {
			opt.apply(&o)
		}
		if o.system != c.system || o.pool() != c.pool || o.host != c.host || o.port != c.port {
			t.Errorf("%s: system %q pool %q host %q port %d; want %q %q %q %d", c.name, o.system, o.pool(), o.host, o.port, c.system, c.pool, c.host, c.port)
		}
	}
}

func TestBadInput(t *testing.T) {
	var ae *dbm.ArgumentError
	if _, err := New(WithServer("h", 70000)); !errors.As(err, &ae) || ae.Arg != "port" || !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("New(WithServer(h, 70000)) = %v, want an ArgumentError for port", err)
	}
	tr, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ObservePool(nil); !errors.As(err, &ae) || ae.Arg != "m" {
		t.Errorf("ObservePool(nil) = %v, want an ArgumentError for m", err)
	}
}

// TestSpanNames: {db.operation.name} {target}, the target being
// db.namespace, else server.address:server.port; without an operation the
// target alone, else db.system.name.
func TestSpanNames(t *testing.T) {
	for _, c := range []struct {
		opts    []Option
		q, want string
	}{
		{[]Option{WithConfig(dbm.Config{Database: "app"})}, "SELECT 1", "SELECT app"},
		{[]Option{WithServer("db", 5433)}, "insert into t values (1)", "insert db:5433"},
		{[]Option{WithServer("db", 0)}, "SELECT 1", "SELECT db"},
		{nil, "SELECT 1", "SELECT"},
		{[]Option{WithServer("db", 5433)}, "", "db:5433"},
		{[]Option{WithSystemName("postgresql")}, "/* no keyword */", "postgresql"},
	} {
		tr, err := New(c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.op(operationName(c.q)).spanName; got != c.want {
			t.Errorf("span name of %q = %q, want %q", c.q, got, c.want)
		}
	}
}
