package dbm_test

// Closed manager, pool settings and refused connections against the shared PostgreSQL server (lib/pq); the
// helpers (pgOpen, pgCreateUsers, ...) are in postgres_test.go.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestPostgresClosedManager checks that every call on a closed manager fails
// with dbm.ErrClosed without touching the database.
func TestPostgresClosedManager(t *testing.T) {
	t.Parallel()
	m := newPostgres(t)
	ctx := t.Context()
	if err := m.Ping(ctx); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil (Close is idempotent)", err)
	}
	fnRan := false
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return m.Ping(ctx) }},
		{"ExecuteQuery", func() error { var out []int64; return m.ExecuteQuery(ctx, &out, "SELECT 1") }},
		{"Get", func() error { var n int64; return m.Get(ctx, &n, "SELECT 1") }},
		{"Exec", func() error { _, err := m.Exec(ctx, "SELECT 1"); return err }},
		{"Query", func() error {
			rows, err := m.Query(ctx, "SELECT 1")
			if err == nil {
				rows.Close()
			}
			return err
		}},
		{"BeginTx", func() error {
			tx, err := m.BeginTx(ctx, nil)
			if err == nil {
				_ = tx.Rollback()
			}
			return err
		}},
		{"WithTx", func() error {
			return m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { fnRan = true; return nil })
		}},
		{"Select", func() error { _, err := dbm.Select[int64](ctx, m, "SELECT 1"); return err }},
		{"One", func() error { _, err := dbm.One[int64](ctx, m, "SELECT 1"); return err }},
		{"Iter", func() error {
			for _, err := range dbm.Iter[int64](ctx, m, "SELECT 1") {
				return err
			}
			return errors.New("Iter yielded nothing")
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, dbm.ErrClosed) {
				t.Errorf("%s on a closed manager = %v, want an error matching dbm.ErrClosed", c.name, err)
			}
		})
	}
	if fnRan {
		t.Error("WithTx ran its function on a closed manager")
	}
	if s := m.Stats(); s.OpenConnections != 0 {
		t.Errorf("Stats().OpenConnections = %d after Close, want 0", s.OpenConnections)
	}
}

// TestPostgresPoolSettings checks that the pool limit from Config reaches
// database/sql and is enforced.
func TestPostgresPoolSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		maxOpen int
		want    int
	}{
		{"default", 0, dbm.DefaultMaxOpenConns},
		{"explicit", 3, 3},
		{"one connection", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := postgresConfig(t)
			cfg.MaxOpenConns = tc.maxOpen
			ctx := t.Context()
			m, err := dbm.New(ctx, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer m.Close()
			if got := m.Stats().MaxOpenConnections; got != tc.want {
				t.Fatalf("Stats().MaxOpenConnections = %d, want %d", got, tc.want)
			}
			if tc.want > 3 {
				return // enforcing is checked on the small pools
			}

			// Hold every connection in a transaction: the next caller must
			// wait, and give up when its context ends.
			var txs []*dbm.Tx
			defer func() {
				for _, tx := range txs {
					_ = tx.Rollback()
				}
			}()
			for range tc.want {
				tx, err := m.BeginTx(ctx, nil)
				if err != nil {
					t.Fatalf("BeginTx: %v", err)
				}
				txs = append(txs, tx)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err = m.Exec(waitCtx, "SELECT 1")
			if !errors.Is(err, dbm.ErrPoolTimeout) && !errors.Is(err, dbm.ErrTimeout) {
				t.Errorf("Exec on an exhausted pool = %v, want an error matching dbm.ErrPoolTimeout or dbm.ErrTimeout", err)
			}
			s := m.Stats()
			if s.OpenConnections > tc.want || s.InUse != tc.want || s.WaitCount == 0 {
				t.Errorf("Stats: OpenConnections=%d InUse=%d WaitCount=%d; want at most %d open, %d in use, a wait", s.OpenConnections, s.InUse, s.WaitCount, tc.want, tc.want)
			}
			_ = txs[0].Rollback()
			var n int64
			if err := m.Get(ctx, &n, "SELECT 1"); err != nil {
				t.Errorf("Get after a connection was freed: %v", err)
			}
		})
	}
}

// TestPostgresConnectionRefused checks New against a port where nothing
// listens: an error matching dbm.ErrConnection that names the address and
// never the password. It needs no server.
func TestPostgresConnectionRefused(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	const password = "n0t-for-Errors p@ss:w/rd?"

	tests := []struct {
		name string
		cfg  dbm.Config
	}{
		{"fields", dbm.Config{Host: "127.0.0.1", Port: port, User: "postgres", Password: password, Database: "test", SSLMode: "disable"}},
		{"URL DSN", dbm.Config{DSN: "postgres://postgres:" + url.QueryEscape(password) + "@" + addr + "/test?sslmode=disable"}},
		{"URL DSN, password in the query", dbm.Config{DSN: "postgres://postgres@" + addr + "/test?sslmode=disable&password=" + url.QueryEscape(password)}},
		{"key=value DSN, quoted password", dbm.Config{DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s' dbname=test sslmode=disable", port, password)}},
		{"key=value DSN, escaped password", dbm.Config{DSN: fmt.Sprintf(`host=127.0.0.1 port=%d password = %s user=postgres`, port, strings.ReplaceAll(password, " ", `\ `))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Long enough for the refusal to arrive even on a loaded
			// machine: a dial the deadline cuts first is a timeout.
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			m, err := dbm.New(ctx, tc.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded against a port with nothing listening")
			}
			if m != nil {
				t.Error("New returned a manager along with its error")
			}
			if !errors.Is(err, dbm.ErrConnection) || dbm.Classify(err) != dbm.ClassConnection {
				t.Errorf("error %v (class %v) does not match dbm.ErrConnection", err, dbm.Classify(err))
			}
			msg := fmt.Sprintf("%v | %+v | %#v", err, err, err)
			if !strings.Contains(msg, addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			for _, secret := range pgSecretForms(password) {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the password (as %q)", msg, secret)
				}
			}
		})
	}
}

// pgSecretForms returns a password as it may appear in text: plain, in
// either URL encoding, and its distinctive pieces (so that a half-redacted
// password is caught too).
func pgSecretForms(password string) []string {
	forms := []string{password, url.QueryEscape(password), url.PathEscape(password)}
	for _, f := range strings.Fields(password) {
		if len(f) >= 4 {
			forms = append(forms, f)
		}
	}
	return forms
}
