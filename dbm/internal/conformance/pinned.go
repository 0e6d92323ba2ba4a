package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// skipThroughPooler skips tests of session state through PgBouncer in
// transaction mode, which does not keep a session per client.
func skipThroughPooler(t *testing.T, tg Target) {
	t.Helper()
	if cfg := tg.Config(t); cfg.Pooler != "" {
		t.Skipf("SKIP: %s in transaction mode keeps no session state; a pinned connection cannot hold it", cfg.Pooler)
	}
}

func testConn(t *testing.T, tg Target) {
	skipThroughPooler(t, tg)
	m := open(t, tg, nil)
	ctx := context.Background()
	d := tg.Dialect

	t.Run("session setting", func(t *testing.T) {
		c, err := m.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		if _, err := c.Exec(ctx, d.Session.Set); err != nil {
			t.Fatalf("Exec(%q): %v", d.Session.Set, err)
		}
		// dbm.One takes the Conn as a Querier.
		if got, err := dbm.One[string](ctx, c, d.Session.Get); err != nil || got != d.Session.Want {
			t.Errorf("after %q on the Conn, %q = %q, %v; want %q", d.Session.Set, d.Session.Get, got, err, d.Session.Want)
		}
		var got string
		if err := c.Get(ctx, &got, d.Session.Get); err != nil || got != d.Session.Want {
			t.Errorf("Conn.Get(%q) = %q, %v; want %q", d.Session.Get, got, err, d.Session.Want)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// The connection was discarded, not given back: no pooled
		// connection carries the setting.
		for range maxConns {
			if got, err := dbm.One[string](ctx, m, d.Session.Get); err != nil || got == d.Session.Want {
				t.Errorf("on the pool after Close, %q = %q, %v; the Conn's setting leaked into the pool", d.Session.Get, got, err)
			}
		}
		if _, err := c.Exec(ctx, "SELECT 1"); !errors.Is(err, dbm.ErrClosed) {
			t.Errorf("Exec after Close: %v, want ErrClosed", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		assertIdle(t, m)
	})

	t.Run("temporary table and a transaction on it", func(t *testing.T) {
		c, err := m.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		defer c.Close()
		tmp := fmt.Sprintf("c5_tmp_%d", os.Getpid())
		if _, err := c.Exec(ctx, "CREATE TEMPORARY TABLE "+tmp+" (id "+d.BigInt+")"); err != nil {
			t.Fatalf("create temporary table: %v", err)
		}
		if _, err := c.Exec(ctx, "INSERT INTO "+tmp+" (id) VALUES (?), (?)", 1, 2); err != nil {
			t.Fatalf("insert into the temporary table: %v", err)
		}
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("Conn.BeginTx: %v", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+tmp+" (id) VALUES (?)", 3); err != nil {
			t.Fatalf("insert in the Conn's transaction: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		var ids []int64
		if err := c.ExecuteQuery(ctx, &ids, "SELECT id FROM "+tmp+" ORDER BY id"); err != nil || len(ids) != 3 {
			t.Errorf("the temporary table on the Conn holds %v, %v; want [1 2 3]", ids, err)
		}
		rows, err := c.Query(ctx, "SELECT id FROM "+tmp)
		if err != nil {
			t.Fatalf("Conn.Query: %v", err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Close(); err != nil || n != 3 {
			t.Errorf("Conn.Query read %d rows, Close: %v", n, err)
		}
	})

	t.Run("Close ends rows and a transaction left open", func(t *testing.T) {
		c, err := m.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		rows, err := c.Query(ctx, "SELECT 1 UNION ALL SELECT 2")
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Close with rows open: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close with rows open did not return in 30s")
		}
		if rows.Next() {
			t.Error("rows still readable after the Conn was closed")
		}
		// A transaction left open is rolled back.
		tbl := table(t, m, tg, "pinnedtx", "id "+d.BigInt)
		c, err = m.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("Conn.BeginTx: %v", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+tbl+" (id) VALUES (?)", 1); err != nil {
			t.Fatalf("insert: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close with a transaction open: %v", err)
		}
		if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
			t.Errorf("Commit after the Conn was closed: %v, want ErrClosed", err)
		}
		if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl); err != nil || n != 0 {
			t.Errorf("%d rows, %v after Close rolled back the Conn's transaction; want 0", n, err)
		}
		if leaks := m.Leaks(); len(leaks) != 0 {
			t.Errorf("Leaks after Close = %v, want none", leaks)
		}
		assertIdle(t, m)
	})

	if d.TryLock != "" {
		t.Run("advisory lock", func(t *testing.T) { testAdvisoryLock(t, m, d) })
	}

	t.Run("dropped Conn is a leak and is reclaimed", func(t *testing.T) {
		before := m.Stats().LeaksReclaimed
		func() {
			c, err := m.Conn(ctx)
			if err != nil {
				t.Fatalf("Conn: %v", err)
			}
			if _, err := c.Exec(ctx, d.Session.Set); err != nil {
				t.Fatalf("Exec: %v", err)
			}
			leaks := m.Leaks()
			if len(leaks) != 1 || leaks[0].Kind != "conn" || !strings.HasPrefix(leaks[0].Location, "pinned.go:") {
				t.Errorf("Leaks() with a Conn open = %v, want one of kind conn opened in pinned.go", leaks)
			}
		}()
		deadline := time.Now().Add(60 * time.Second)
		for m.Stats().LeaksReclaimed == before || m.Stats().InUse != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the dropped Conn was not reclaimed in 60s: %+v", m.Stats())
			}
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
		if leaks := m.Leaks(); len(leaks) != 0 {
			t.Errorf("Leaks() after the reclaim = %v, want none", leaks)
		}
		// Reclaimed means discarded: the setting is on no pooled connection.
		for range maxConns {
			if got, err := dbm.One[string](ctx, m, d.Session.Get); err != nil || got == d.Session.Want {
				t.Errorf("after the reclaim, %q = %q, %v on the pool", d.Session.Get, got, err)
			}
		}
	})
	assertIdle(t, m)
}

// testAdvisoryLock takes a session-level lock on one Conn: another session
// cannot take it while the Conn holds it, and can once the Conn is closed
// (closing discards the session, which releases its locks).
func testAdvisoryLock(t *testing.T, m *dbm.Manager, d Dialect) {
	ctx := context.Background()
	name := fmt.Sprintf("dbm_c5_lock_%d_%d", os.Getpid(), time.Now().UnixNano())
	try := func(c *dbm.Conn) int64 {
		t.Helper()
		got, err := dbm.One[int64](ctx, c, d.TryLock, name)
		if err != nil {
			t.Fatalf("%s: %v", d.TryLock, err)
		}
		return got
	}
	holder, err := m.Conn(ctx)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	defer holder.Close()
	if got := try(holder); got != 1 {
		t.Fatalf("the first session did not get the free lock (%d)", got)
	}
	other, err := m.Conn(ctx)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	defer other.Close()
	if got := try(other); got != 0 {
		t.Errorf("another session got the lock the Conn holds (%d)", got)
	}
	if err := holder.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The server releases the lock when it ends the session, which it does
	// on its own time after the client closed the connection.
	deadline := time.Now().Add(30 * time.Second)
	for try(other) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the lock was not released in 30s after the Conn that held it was closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testSavepoints(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	insert := func(tx *dbm.Tx, id int64) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+tbl+" (id, name, age) VALUES (?, ?, ?)", id, fmt.Sprint("p", id), 1)
		return err
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if err := insert(tx, 10); err != nil {
			return err
		}
		if err := tx.Savepoint(ctx, "before_11"); err != nil {
			return fmt.Errorf("tx.Savepoint: %w", err)
		}
		if err := insert(tx, 11); err != nil {
			return err
		}
		if err := tx.RollbackTo(ctx, "before_11"); err != nil {
			return fmt.Errorf("tx.RollbackTo: %w", err)
		}
		// A failed statement after a savepoint: rolling back to it lets
		// the transaction go on (PostgreSQL aborts it otherwise).
		if err := tx.Savepoint(ctx, "dup"); err != nil {
			return err
		}
		if err := insert(tx, 10); !errors.Is(err, dbm.ErrUniqueViolation) {
			return fmt.Errorf("duplicate insert: %v, want ErrUniqueViolation", err)
		}
		if err := tx.RollbackTo(ctx, "dup"); err != nil {
			return fmt.Errorf("tx.RollbackTo after a failed statement: %w", err)
		}
		if err := tx.Release(ctx, "dup"); err != nil {
			return fmt.Errorf("tx.Release: %w", err)
		}
		return insert(tx, 12)
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	ids, err := dbm.Select[int64](ctx, m, "SELECT id FROM "+tbl+" WHERE id >= 10 ORDER BY id")
	if err != nil || fmt.Sprint(ids) != "[10 12]" {
		t.Errorf("after the savepoints: ids %v, %v; want [10 12] (the write before the savepoint kept, the one after undone)", ids, err)
	}
	// A name that is not an identifier is refused before anything is sent.
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "1st", "a b", `x"; DROP TABLE ` + tbl + `; --`, strings.Repeat("s", 64)} {
		if err := tx.Savepoint(ctx, bad); !errors.Is(err, dbm.ErrInvalidArgument) || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("Savepoint(%q) = %v, want ErrInvalidArgument naming name", bad, err)
		}
	}
	if err := tx.RollbackTo(ctx, "never_set"); err == nil {
		t.Error("RollbackTo a savepoint never set: nil error")
	}
	_ = tx.Rollback()
	assertIdle(t, m)
}
