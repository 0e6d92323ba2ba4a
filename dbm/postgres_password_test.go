package dbm_test

// Password authentication against a throwaway PostgreSQL server that checks
// passwords with scram-sha-256. The shared server trusts every connection,
// so it cannot show that the password is sent, and sent intact.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// pgQuoteLiteral quotes s as an SQL string literal (standard conforming
// strings: only the quote is special). CREATE ROLE takes no parameters.
func pgQuoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// pgConnect opens a manager on srv as user and closes it when the test ends.
func pgConnect(t *testing.T, srv *pgtest.Server, user, password, database string) (*dbm.Manager, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := dbm.Config{Host: srv.Host, Port: srv.Port, User: user, Password: password, Database: database, SSLMode: "disable"}
	m, err := dbm.New(ctx, cfg)
	if err == nil {
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	return m, err
}

// TestPostgresPasswordAuthentication logs in with passwords full of
// characters that URLs, DSNs and SQL treat specially, and checks that a
// wrong password is refused with an error that does not repeat it.
func TestPostgresPasswordAuthentication(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, pgtest.OnMissing(missingServer))
	ctx := t.Context()

	admin, err := pgConnect(t, srv, srv.Superuser, srv.Password, "postgres")
	if err != nil {
		t.Fatalf("connect as the superuser: %v\nserver log:\n%s", err, srv.Log())
	}
	// The test proves something only if the server really checks passwords.
	methods, err := dbm.Select[string](ctx, admin, "SELECT DISTINCT auth_method FROM pg_hba_file_rules")
	if err != nil || len(methods) != 1 || methods[0] != "scram-sha-256" {
		t.Fatalf("pg_hba.conf methods = %v, %v; want only scram-sha-256", methods, err)
	}

	tests := []struct {
		name     string
		password string
	}{
		{"URL and DSN special characters", "p@ss:w/rd?#%&= ok"},
		{"quote and backslash", `it's a \back\slash\ and '' two`},
		{"leading and trailing spaces", "  spaced out  "},
		{"percent escapes and plus", "100%25+20%zz+"},
		{"non-ASCII", "pässwörd ✓ 密码"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			role := fmt.Sprintf("dbm_role_%d", i)
			database := fmt.Sprintf("dbm_db_%d", i)
			for _, stmt := range []string{
				"CREATE ROLE " + role + " LOGIN PASSWORD " + pgQuoteLiteral(tc.password),
				"CREATE DATABASE " + database + " OWNER " + role,
			} {
				if _, err := admin.Exec(ctx, stmt); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			stored, err := dbm.One[string](ctx, admin, "SELECT rolpassword FROM pg_authid WHERE rolname = ?", role)
			if err != nil || !strings.HasPrefix(stored, "SCRAM-SHA-256$") {
				t.Fatalf("stored password of %s is not a SCRAM verifier (%v)", role, err)
			}

			m, err := pgConnect(t, srv, role, tc.password, database)
			if err != nil {
				t.Fatalf("connect as %s with the right password: %v\nserver log:\n%s", role, err, srv.Log())
			}
			var who struct {
				User     string `db:"current_user"`
				Database string `db:"current_database"`
			}
			if err := m.Get(ctx, &who, "SELECT current_user, current_database()"); err != nil {
				t.Fatalf("query: %v", err)
			}
			if who.User != role || who.Database != database {
				t.Errorf("connected as %s to %s, want %s to %s", who.User, who.Database, role, database)
			}

			wrong := tc.password + "-wrong"
			m, err = pgConnect(t, srv, role, wrong, database)
			if err == nil {
				t.Fatal("connected with a wrong password")
			}
			if m != nil {
				t.Error("New returned a manager along with its error")
			}
			for _, want := range []error{dbm.ErrConnection, dbm.ErrPermission} {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not match %v", err, want)
				}
			}
			var pqErr *pq.Error
			if !errors.As(err, &pqErr) || pqErr.Code != "28P01" {
				t.Errorf("error %v: want a *pq.Error with code 28P01 (invalid_password)", err)
			}
			msg := fmt.Sprintf("%v | %+v | %#v", err, err, err)
			if !strings.Contains(msg, srv.Addr()) {
				t.Errorf("error %q does not name the server %s", msg, srv.Addr())
			}
			for _, secret := range append(pgSecretForms(wrong), pgSecretForms(tc.password)...) {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the password (as %q)", msg, secret)
				}
			}
		})
	}
}
