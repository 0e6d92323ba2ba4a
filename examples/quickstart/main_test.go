package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickstartOnEmbeddedSQLite runs the quickstart as `make run` does on a
// fresh machine: no DB_* variables, embedded SQLite.
func TestQuickstartOnEmbeddedSQLite(t *testing.T) {
	for _, v := range []string{"DB_DRIVER", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
		t.Setenv(v, "")
	}
	t.Chdir(t.TempDir()) // no .env file
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"inserted 4 users\n1 Ada Lovelace", "Grace Hopper", "Alan Turing", "in_use=0", "max_open=10"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Charles Babbage") {
		t.Errorf("inactive user listed:\n%s", got)
	}
}

// TestQuickstartOnServers runs the quickstart against the PostgreSQL (lib/pq
// and pgx) and MariaDB servers, configured only through DB_* variables as a
// user would. A server that does not answer skips the case locally and
// fails it when DBM_REQUIRE_INTEGRATION=1 (CI).
func TestQuickstartOnServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		env  map[string]string
	}{
		{"postgres", "127.0.0.1:5432", map[string]string{"DB_DRIVER": "postgres", "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_NAME": "test", "DB_SSLMODE": "disable"}},
		{"pgx", "127.0.0.1:5432", map[string]string{"DB_DRIVER": "pgx", "DB_HOST": "127.0.0.1", "DB_USER": "postgres", "DB_NAME": "test"}},
		{"mysql", "127.0.0.1:3306", map[string]string{"DB_DRIVER": "mysql", "DB_HOST": "127.0.0.1", "DB_USER": "root", "DB_NAME": "test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := net.DialTimeout("tcp", tc.addr, 2*time.Second); err != nil {
				if os.Getenv("DBM_REQUIRE_INTEGRATION") == "1" {
					t.Fatalf("%s server at %s is required but not reachable: %v", tc.name, tc.addr, err)
				}
				t.Skipf("SKIP: %s server at %s not reachable (%v); set DBM_REQUIRE_INTEGRATION=1 to fail instead", tc.name, tc.addr, err)
			} else {
				c.Close()
			}
			for _, v := range []string{"DB_DRIVER", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSLMODE", "DB_PARAMS"} {
				t.Setenv(v, tc.env[v])
			}
			isolate(t, tc.name)
			t.Chdir(t.TempDir())
			var out bytes.Buffer
			if err := run(context.Background(), &out); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); !strings.Contains(got, "Grace Hopper") || strings.Contains(got, "Charles Babbage") || !strings.Contains(got, tc.name) {
				t.Errorf("output:\n%s", got)
			}
		})
	}
}

// isolate points the quickstart at a schema (PostgreSQL) or database
// (MariaDB) of its own, made for this run and dropped after it, so that its
// users table cannot meet another suite's on the shared servers.
func isolate(t *testing.T, driver string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("quickstart_%s_%d_%d", driver, os.Getpid(), time.Now().UnixNano()%1e6)
	create, drop := "CREATE SCHEMA "+name, "DROP SCHEMA "+name+" CASCADE"
	if driver == dbm.DriverMySQL {
		create, drop = "CREATE DATABASE "+name, "DROP DATABASE "+name
	}
	if _, err := admin.Exec(ctx, create); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m, err := dbm.New(ctx, cfg)
		if err == nil {
			_, err = m.Exec(ctx, drop)
			m.Close()
		}
		if err != nil {
			t.Errorf("%s: %v", drop, err)
		}
	})
	if driver == dbm.DriverMySQL {
		t.Setenv("DB_NAME", name)
	} else {
		t.Setenv("DB_PARAMS", "search_path="+name)
	}
}

func TestQuickstartLeavesAnExistingUsersTableAlone(t *testing.T) {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Exec(ctx, "CREATE TABLE users (id INTEGER, precious TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "INSERT INTO users VALUES (1, 'keep me')"); err != nil {
		t.Fatal(err)
	}
	if err := createTable(ctx, m); err == nil || !strings.Contains(err.Error(), "never touches an existing one") {
		t.Errorf("seed on a database with a users table: %v", err)
	}
	if v, err := dbm.One[string](ctx, m, "SELECT precious FROM users WHERE id = 1"); err != nil || v != "keep me" {
		t.Errorf("existing table changed: %q, %v", v, err)
	}
}

func TestQuickstartFallsBackToSQLiteOnlyWithoutSettings(t *testing.T) {
	for _, v := range []string{"DB_DRIVER", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
		t.Setenv(v, "")
	}
	t.Chdir(t.TempDir())
	cfg, err := loadConfig()
	if err != nil || cfg.Driver != dbm.DriverSQLite || cfg.Database != ":memory:" {
		t.Errorf("no settings: %v, %v; want in-memory SQLite", cfg, err)
	}
	t.Setenv("DB_NAME", "app")
	cfg, err = loadConfig()
	if err != nil || cfg.Driver == dbm.DriverSQLite {
		t.Errorf("DB_NAME alone: %v, %v; want the PostgreSQL default, not an SQLite file", cfg, err)
	}
}
