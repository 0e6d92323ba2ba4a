package dbm_test

// Retries on SQLite (busy database) and MariaDB (deadlock): the classes
// their drivers report, the statement retried, the transaction rerun.

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestSQLiteBusyIsRetried(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	// busy_timeout(0): a locked database fails at once with SQLITE_BUSY
	// instead of waiting, so the test needs no timing.
	cfg := dbm.Config{Driver: dbm.DriverSQLite, DSN: "file:" + path + "?_pragma=busy_timeout(0)", MaxOpenConns: 1}
	a, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	clk := &retryClock{}
	dbm.SetClockForTest(b, clk.now, clk.sleep)
	if _, err := a.Exec(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}

	// lockA begins a transaction on a that holds the write lock until the
	// fake clock's first pause, when it commits.
	lockA := func(id int) {
		t.Helper()
		tx, err := a.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO t (id, v) VALUES (?, 'a')", id); err != nil {
			t.Fatal(err)
		}
		clk.mu.Lock()
		clk.sleeps = nil
		clk.onWake = func(n int) {
			if n == 1 {
				if err := tx.Commit(); err != nil {
					t.Errorf("commit a: %v", err)
				}
			}
		}
		clk.mu.Unlock()
	}

	t.Run("statement", func(t *testing.T) {
		lockA(1)
		if _, err := b.Exec(ctx, "INSERT INTO t (id, v) VALUES (2, 'b')"); err != nil {
			t.Fatalf("write while a held the lock: %v", err)
		}
		if s := b.Stats(); s.Retries != 1 || s.ErrorsByClass["lock_timeout"] != 1 {
			t.Errorf("stats: retries %d, errors %v; want one busy error, retried", s.Retries, s.ErrorsByClass)
		}
	})

	t.Run("transaction rerun", func(t *testing.T) {
		lockA(3)
		runs := 0
		err := b.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			runs++
			_, err := tx.Exec(ctx, "INSERT INTO t (id, v) VALUES (4, 'b')")
			return err
		})
		if err != nil || runs != 2 {
			t.Errorf("WithTx: %v after %d runs, want success on the second", err, runs)
		}
	})

	t.Run("unique violation is not retried", func(t *testing.T) {
		before := b.Stats().Retries
		_, err := b.Exec(ctx, "INSERT INTO t (id, v) VALUES (4, 'again')")
		if !errors.Is(err, dbm.ErrUniqueViolation) || b.Stats().Retries != before {
			t.Errorf("err %v, retries %d -> %d", err, before, b.Stats().Retries)
		}
	})
	var ids []int
	if err := a.ExecuteQuery(ctx, &ids, "SELECT id FROM t ORDER BY id"); err != nil || len(ids) != 4 {
		t.Errorf("rows = %v, %v; want 1..4 once each", ids, err)
	}
}

func TestMySQLDeadlockReruns(t *testing.T) {
	const addr = "127.0.0.1:3306"
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		missingServer(t, "MariaDB at "+addr, err)
	} else {
		c.Close()
	}
	ctx := t.Context()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Database: "test", MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fastRetries(m)
	table := "dbm_i3_dl_" + pgRandom(4)
	if _, err := m.Exec(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, v INT) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	defer m.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
	if _, err := m.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	inc := func(id string) string { return "UPDATE " + table + " SET v = v + 1 WHERE id = " + id }
	runs := pgConflict(t, m, nil, [2][2]string{{inc("1"), inc("2")}, {inc("2"), inc("1")}})
	if runs[0]+runs[1] < 3 || m.Stats().ErrorsByClass["deadlock"] < 1 {
		t.Errorf("runs %v, errors %v; want a deadlock (1213) and a rerun", runs, m.Stats().ErrorsByClass)
	}
	var vals []int
	if err := m.ExecuteQuery(ctx, &vals, "SELECT v FROM "+table+" ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vals, []int{2, 2}) {
		t.Errorf("values = %v, want [2 2]: each transaction committed exactly once", vals)
	}
}
