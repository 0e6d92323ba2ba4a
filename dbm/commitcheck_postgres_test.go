package dbm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/lostcommit"
)

// TestPostgresLostCommitResolved cuts 100 COMMITs on lib/pq, half after
// the server's reply, half before the server got COMMIT, and checks every
// answer of Commit against the table (see package lostcommit).
func TestPostgresLostCommitResolved(t *testing.T) {
	longTest(t, "100 cut COMMITs")
	cfg := postgresConfig(t)
	cfg.Params = map[string]string{"application_name": "dbm-lifecycle-lc-" + pgRandom(4)}
	noGoroutineLeft(t)
	r := lostcommit.Run(t, cfg, newPostgres(t), "COMMIT", 100)
	if r.Wrong != 0 || r.Unknown != 0 || r.Committed != 50 || r.RolledBack != 50 {
		t.Errorf("result %+v, want 50 committed, 50 rolled back, none unknown or wrong", r)
	}
}

// TestPostgresLostCommitWithTx: a COMMIT that never reached the server is
// known to be rolled back, so WithTx runs fn again (the row is written
// once); one whose reply was lost after the server committed is success,
// and fn is not run again.
func TestPostgresLostCommitWithTx(t *testing.T) {
	proxy, cfg := pgViaProxy(t)
	admin := newPostgres(t)
	table := pgTable(t, admin, "dbm_lifecycle_")
	m := pgManager(t, cfg)
	fastRetries(m)
	for _, tc := range []struct {
		name     string
		arm      func()
		wantRuns int
	}{
		{"COMMIT lost before the server", func() { proxy.DropRequest([]byte("COMMIT"), 1) }, 2},
		{"reply lost after the commit", func() { proxy.DropReply([]byte("COMMIT"), 1) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := "withtx-" + pgRandom(4)
			tc.arm()
			runs := 0
			err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
				runs++
				_, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, v) VALUES (?, ?)", 100+runs+len(tc.name), v)
				return err
			})
			if err != nil || runs != tc.wantRuns {
				t.Errorf("WithTx = %v after %d runs, want nil after %d", err, runs, tc.wantRuns)
			}
			if n := pgCount(t, admin, table, "v = '"+v+"'"); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
		})
	}
}

// TestPostgresLostCommitUnreachable: when the server cannot be asked (no
// new connection reaches it) until the caller's deadline, the outcome is
// unknown, and counted so.
func TestPostgresLostCommitUnreachable(t *testing.T) {
	proxy, cfg := pgViaProxy(t)
	cfg.MaxOpenConns = 1 // the check needs a new connection
	admin := newPostgres(t)
	table := pgTable(t, admin, "dbm_lifecycle_")
	m := pgManager(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, v) VALUES (1, 'unreachable')"); err != nil {
		t.Fatal(err)
	}
	proxy.DropReply([]byte("COMMIT"), 1)
	proxy.RefuseNew(true)
	_, err = timed(t, 30*time.Second, tx.Commit)
	proxy.RefuseNew(false)
	if !errors.Is(err, dbm.ErrCommitUnknown) {
		t.Errorf("Commit = %v, want ErrCommitUnknown", err)
	}
	if n := pgCount(t, admin, table, "v = 'unreachable'"); n != 1 {
		t.Errorf("%d rows, want 1: the server got COMMIT", n)
	}
	if s := m.Stats(); s.LostCommitsUnknown != 1 {
		t.Errorf("Stats().LostCommitsUnknown = %d, want 1", s.LostCommitsUnknown)
	}
}

// TestPostgresLostCommitSessionLeftOpen: the client's connection dies
// before COMMIT reaches the server, but the server's side stays open (a
// NAT or the client's network dropped it): the server keeps the session
// idle in the transaction, which stays "in progress". The manager ends
// that session (its own) and then knows: rolled back, every time.
func TestPostgresLostCommitSessionLeftOpen(t *testing.T) {
	proxy, cfg := pgViaProxy(t)
	admin := newPostgres(t)
	table := pgTable(t, admin, "dbm_lifecycle_")
	m := pgManager(t, cfg)
	for i := range 5 {
		proxy.HoldRequest([]byte("COMMIT"), 1)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, v) VALUES (?, 'held')", i); err != nil {
			cancel()
			t.Fatal(err)
		}
		err = tx.Commit()
		cancel()
		if err == nil || errors.Is(err, dbm.ErrOutcomeUnknown) || dbm.Classify(err) != dbm.ClassConnection {
			t.Errorf("cut %d: Commit = %v (class %v), want a connection error that is not outcome-unknown", i, err, dbm.Classify(err))
		}
	}
	if n := pgCount(t, admin, table, "v = 'held'"); n != 0 {
		t.Errorf("%d rows, want 0: no COMMIT reached the server", n)
	}
	if s := m.Stats(); s.LostCommitsRolledBack != 5 {
		t.Errorf("Stats().LostCommitsRolledBack = %d, want 5", s.LostCommitsRolledBack)
	}
}
