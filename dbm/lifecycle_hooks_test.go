package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type tenantKey struct{}

// TestOnConnectSetsUpEverySession: OnConnect runs once per new connection
// and what it sets is seen by every statement on every connection.
func TestOnConnectSetsUpEverySession(t *testing.T) {
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			cfg := srv.cfg(t)
			cfg.MaxOpenConns = 3
			var calls atomic.Int32
			set := strings.Replace(srv.setVar, "$1", "?", 1)
			if srv.name == "PostgreSQL" {
				set = "SET app.tenant = 'on-connect'"
			}
			m := lcNew(t, cfg, dbm.WithOnConnect(func(ctx context.Context, c dbm.Execer) error {
				calls.Add(1)
				var args []any
				if strings.Contains(set, "?") {
					args = []any{"on-connect"}
				}
				_, err := c.Exec(ctx, set, args...)
				return err
			}))
			ctx := t.Context()
			conns := make([]*dbm.Conn, 3)
			for i := range conns {
				c, err := m.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns[i] = c
				var got string
				if err := c.Get(ctx, &got, srv.getVar); err != nil || got != "on-connect" {
					t.Errorf("connection %d: %s = %q, %v; want on-connect", i, srv.getVar, got, err)
				}
			}
			for _, c := range conns {
				_ = c.Close()
			}
			// Conn.Close discards its connection: 3 made for the Conns and
			// none reused, plus New's.
			if n := calls.Load(); n < 3 || int(n) > 4 {
				t.Errorf("OnConnect ran %d times for 3 or 4 connections", n)
			}
		})
	}
}

// TestOnConnectErrorFailsTheDial: New fails with the hook's error, at once
// (it is not a connection error to retry).
func TestOnConnectErrorFailsTheDial(t *testing.T) {
	boom := errors.New("session set-up refused")
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			m, err := dbm.New(t.Context(), srv.cfg(t), dbm.WithOnConnect(func(context.Context, dbm.Execer) error { return boom }))
			if err == nil {
				m.Close()
			}
			if !errors.Is(err, boom) {
				t.Errorf("New = %v, want the hook's error", err)
			}
		})
	}
}

// TestBeforeUseAfterRelease: per-checkout set-up from the caller's context
// (a tenant, as row-level security would read it), undone when the
// connection goes back: a statement without a tenant, on the same single
// connection, sees none. In a transaction the hook runs after BEGIN.
func TestBeforeUseAfterRelease(t *testing.T) {
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			cfg := srv.cfg(t)
			cfg.MaxOpenConns = 1
			var before, after atomic.Int32
			m := lcNew(t, cfg,
				dbm.WithBeforeUse(func(ctx context.Context, c dbm.Execer) error {
					before.Add(1)
					tenant, ok := ctx.Value(tenantKey{}).(string)
					if !ok {
						return nil
					}
					_, err := c.Exec(ctx, srv.setVar, tenant)
					return err
				}),
				dbm.WithAfterRelease(func(ctx context.Context, c dbm.Execer) error {
					after.Add(1)
					_, err := c.Exec(ctx, srv.unsetVar)
					return err
				}))
			get := func(ctx context.Context) string {
				t.Helper()
				var got string
				if err := m.Get(ctx, &got, srv.getVar); err != nil {
					t.Fatal(err)
				}
				return got
			}
			bg := t.Context()
			acme := context.WithValue(bg, tenantKey{}, "acme")
			if got := get(acme); got != "acme" {
				t.Errorf("with tenant acme: %q", got)
			}
			if got := get(bg); got != "" {
				t.Errorf("without a tenant, after acme's checkout: %q; AfterRelease did not undo it", got)
			}
			err := m.WithTx(context.WithValue(bg, tenantKey{}, "globex"), nil, func(ctx context.Context, tx *dbm.Tx) error {
				var got string
				if err := tx.Get(ctx, &got, srv.getVar); err != nil {
					return err
				}
				if got != "globex" {
					t.Errorf("in the transaction: %q, want globex", got)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := get(bg); got != "" {
				t.Errorf("after the transaction: %q", got)
			}
			if b, a := before.Load(), after.Load(); b < 4 || a < 4 {
				t.Errorf("BeforeUse ran %d times, AfterRelease %d, want at least 4 each", b, a)
			}
		})
	}
}

// TestBeforeUseSetLocalInTransaction: on PostgreSQL, BeforeUse runs inside
// the transaction, so SET LOCAL works, and ends with it.
func TestBeforeUseSetLocalInTransaction(t *testing.T) {
	cfg := lcServers[0].cfg(t)
	cfg.MaxOpenConns = 1
	m := lcNew(t, cfg, dbm.WithBeforeUse(func(ctx context.Context, c dbm.Execer) error {
		tenant, ok := ctx.Value(tenantKey{}).(string)
		if !ok {
			return nil
		}
		_, err := c.Exec(ctx, "SELECT set_config('app.tenant', $1, true)", tenant) // SET LOCAL
		return err
	}))
	ctx := context.WithValue(t.Context(), tenantKey{}, "initech")
	var inTx, afterTx string
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		return tx.Get(ctx, &inTx, lcServers[0].getVar)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Get(t.Context(), &afterTx, lcServers[0].getVar); err != nil {
		t.Fatal(err)
	}
	if inTx != "initech" || afterTx != "" {
		t.Errorf("SET LOCAL from BeforeUse: in the transaction %q, after it %q; want initech, empty", inTx, afterTx)
	}
}

// TestBeforeUseErrorFailsTheCall: the call fails with the hook's error and
// the connection is not reused.
func TestBeforeUseErrorFailsTheCall(t *testing.T) {
	boom := errors.New("no tenant")
	for _, srv := range lcServers {
		t.Run(srv.name, func(t *testing.T) {
			cfg := srv.cfg(t)
			cfg.MaxOpenConns = 1
			m := lcNew(t, cfg, dbm.WithBeforeUse(func(ctx context.Context, c dbm.Execer) error {
				if ctx.Value(tenantKey{}) == nil {
					return boom
				}
				return nil
			}))
			var id1, id2 int64
			if err := m.Get(t.Context(), &id1, srv.backendID); !errors.Is(err, boom) {
				t.Errorf("Get = %v, want the hook's error", err)
			}
			if _, err := m.BeginTx(t.Context(), nil); !errors.Is(err, boom) {
				t.Errorf("BeginTx = %v, want the hook's error", err)
			}
			ctx := context.WithValue(t.Context(), tenantKey{}, "ok")
			if err := m.Get(ctx, &id2, srv.backendID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHooksNeedNew: Wrap's pool is not made by the manager; it refuses the
// hooks rather than ignore them. A nil hook is refused too.
func TestHooksNeedNew(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hook := func(context.Context, dbm.Execer) error { return nil }
	for name, opt := range map[string]dbm.Option{
		"WithOnConnect": dbm.WithOnConnect(hook), "WithBeforeUse": dbm.WithBeforeUse(hook), "WithAfterRelease": dbm.WithAfterRelease(hook),
	} {
		_, err := dbm.Wrap(db, "sqlite", opt)
		var ae *dbm.ArgumentError
		if !errors.As(err, &ae) || ae.Arg != name {
			t.Errorf("Wrap with %s = %v, want an ArgumentError naming it", name, err)
		}
	}
	_, err = dbm.New(t.Context(), dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, dbm.WithBeforeUse(nil))
	var ae *dbm.ArgumentError
	if !errors.As(err, &ae) || ae.Arg != "WithBeforeUse" {
		t.Errorf("New with a nil hook = %v, want an ArgumentError naming WithBeforeUse", err)
	}
}
