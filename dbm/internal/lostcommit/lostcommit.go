// Package lostcommit is the test of the manager's lost-COMMIT resolution
// on PostgreSQL, shared by the lib/pq tests (package dbm) and the pgx tests
// (package dbm/dbmpgx, which imports pgx): a fault proxy cuts the
// connection right after the server's reply to COMMIT (the transaction
// committed; the reply is lost) or right before COMMIT reaches the server
// (it is rolled back), and every answer of Commit is checked against the
// table's contents.
package lostcommit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/faultproxy"
)

// Result counts Commit's answers.
type Result struct {
	Committed, RolledBack, Unknown, Wrong int
}

// Run makes cuts transactions through a fault proxy in front of cfg's
// server, each inserting one row, and cuts every COMMIT: the even ones
// after the server's reply (DropReply), the odd ones before the server
// gets it (DropRequest). commit is the text the driver sends for COMMIT
// ("COMMIT" for lib/pq, "commit" for pgx). admin reaches the server
// directly. The test fails on any answer that does not match the table, on
// a cut the proxy did not make, and on an ErrCommitUnknown (the server is
// reachable: it can always say).
func Run(t *testing.T, cfg dbm.Config, admin *dbm.Manager, commit string, cuts int) Result {
	t.Helper()
	ctx := t.Context()
	proxy, err := faultproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	table := fmt.Sprintf("dbm_lifecycle_lc_%d", rand.Uint32())
	if _, err := admin.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })

	cfg.Host, cfg.Port = "127.0.0.1", proxy.Port()
	cfg.MaxOpenConns = 2
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var r Result
	for i := range cuts {
		after := i%2 == 0
		if after {
			proxy.DropReply([]byte(commit), 1)
		} else {
			proxy.DropRequest([]byte(commit), 1)
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		tx, err := m.BeginTx(tctx, nil)
		if err != nil {
			cancel()
			t.Fatalf("cut %d: BeginTx: %v", i, err)
		}
		if _, err := tx.Exec(tctx, "INSERT INTO "+table+" (id) VALUES ($1)", i); err != nil {
			cancel()
			t.Fatalf("cut %d: INSERT: %v", i, err)
		}
		err = tx.Commit()
		cancel()
		if got := proxy.Stats().Cuts; got != i+1 {
			t.Fatalf("cut %d: the proxy made %d cuts, want %d: the fault did not hit COMMIT", i, got, i+1)
		}
		var n int
		if err := admin.Get(ctx, &n, "SELECT count(*) FROM "+table+" WHERE id = $1", i); err != nil {
			t.Fatal(err)
		}
		switch {
		case err == nil:
			r.Committed++
			if n != 1 || !after {
				r.Wrong++
				t.Errorf("cut %d (after reply: %v): Commit = nil, rows = %d", i, after, n)
			}
		case errors.Is(err, dbm.ErrCommitUnknown):
			r.Unknown++
			t.Errorf("cut %d (after reply: %v): Commit = %v: the server was reachable and could say (rows = %d)", i, after, err, n)
		case dbm.Classify(err) == dbm.ClassConnection && !errors.Is(err, dbm.ErrOutcomeUnknown):
			r.RolledBack++
			if n != 0 || after {
				r.Wrong++
				t.Errorf("cut %d (after reply: %v): Commit = %v (rolled back), rows = %d", i, after, err, n)
			}
		default:
			r.Wrong++
			t.Errorf("cut %d (after reply: %v): Commit = %v (class %v), rows = %d", i, after, err, dbm.Classify(err), n)
		}
	}
	s := m.Stats()
	if s.LostCommitsCommitted != uint64(r.Committed) || s.LostCommitsRolledBack != uint64(r.RolledBack) || s.LostCommitsUnknown != uint64(r.Unknown) {
		t.Errorf("Stats lost commits = %d/%d/%d, want %d/%d/%d", s.LostCommitsCommitted, s.LostCommitsRolledBack, s.LostCommitsUnknown, r.Committed, r.RolledBack, r.Unknown)
	}
	t.Logf("figure: %d COMMITs cut (%s): %d committed, %d rolled back, %d unknown, %d wrong", cuts, cfg.Driver, r.Committed, r.RolledBack, r.Unknown, r.Wrong)
	return r
}
