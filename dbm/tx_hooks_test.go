package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmtest"
)

// newHookMock is a dbmtest mock whose retries do not pause, allowing up to
// three runs of a WithTx function.
func newHookMock(t *testing.T) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	m, mock := dbmtest.NewMock(t)
	fastRetries(m)
	dbm.SetRetryForTest(m, 3, 0, 0, 0)
	return m, mock
}

// TestAfterCommitRunsOnceAfterARerun is the reproduction: a forced
// 40001 reruns fn. What fn collects from outside is appended twice
// ([1 2 1 2]); what it collects inside and hands to AfterCommit is not, and
// the function registered by the aborted run never runs.
func TestAfterCommitRunsOnceAfterARerun(t *testing.T) {
	for _, at := range []string{"statement", "commit"} {
		t.Run(at, func(t *testing.T) {
			m, mock := newHookMock(t)
			mock.ExpectBegin()
			ins := mock.ExpectExec("INSERT INTO t (id) VALUES (?), (?)").WithArgs(1, 2)
			if at == "statement" {
				ins.WillReturnError(&stateErr{"40001"})
				mock.ExpectRollback()
			} else {
				ins.WillReturnResult(sqlmock.NewResult(0, 2))
				mock.ExpectCommit().WillReturnError(&stateErr{"40001"})
			}
			mock.ExpectBegin()
			mock.ExpectExec("INSERT INTO t (id) VALUES (?), (?)").WithArgs(1, 2).WillReturnResult(sqlmock.NewResult(0, 2))
			mock.ExpectCommit()

			var outer []int // the unsafe pattern
			ranHooks := map[int][]int{}
			runs := 0
			err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
				runs++
				run := runs
				var ids []int // the safe pattern
				if _, err := tx.Exec(ctx, "INSERT INTO t (id) VALUES (?), (?)", 1, 2); err != nil {
					return err
				}
				ids = append(ids, 1, 2)
				outer = append(outer, 1, 2)
				return tx.AfterCommit(func() { ranHooks[run] = append(ranHooks[run], ids...) })
			})
			if err != nil || runs != 2 {
				t.Fatalf("WithTx = %v after %d runs; want success on the second run", err, runs)
			}
			if len(ranHooks) != 1 || len(ranHooks[2]) != 2 {
				t.Errorf("hooks ran %v; want only the second run's, once, with [1 2]", ranHooks)
			}
			if at == "commit" && len(outer) != 4 {
				t.Errorf("outer = %v; the reproduction expects [1 2 1 2]", outer)
			}
		})
	}
}

func TestAfterCommitNotAfterRollback(t *testing.T) {
	m, mock := newHookMock(t)
	mock.ExpectBegin()
	mock.ExpectRollback()
	ran := false
	boom := errors.New("boom")
	err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
		if err := tx.AfterCommit(func() { ran = true }); err != nil {
			t.Error(err)
		}
		return boom
	})
	if !errors.Is(err, boom) || ran {
		t.Errorf("WithTx = %v, hook ran %v; want fn's error and no hook", err, ran)
	}

	mock.ExpectBegin()
	mock.ExpectRollback()
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = tx.AfterCommit(func() { ran = true })
	if err := tx.Rollback(); err != nil || ran {
		t.Errorf("Rollback = %v, hook ran %v", err, ran)
	}
	if err := tx.AfterCommit(func() {}); !errors.Is(err, dbm.ErrClosed) || !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("AfterCommit after Rollback = %v, want ErrClosed", err)
	}
}

// TestAfterCommitOnPlainTx: after Commit succeeds, in order, with the
// transaction fully ended; not at all when Commit's outcome is unknown.
func TestAfterCommitOnPlainTx(t *testing.T) {
	m, mock := newHookMock(t)
	mock.ExpectBegin()
	mock.ExpectCommit()
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, name := range []string{"first", "second"} {
		if err := tx.AfterCommit(func() {
			s := m.Stats()
			if s.Commits != 1 || s.InUse != 0 || len(m.Leaks()) != 0 {
				t.Errorf("%s hook saw commits %d, in use %d, leaks %v: the transaction must be ended first", name, s.Commits, s.InUse, m.Leaks())
			}
			order = append(order, name)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(order) != 0 {
		t.Fatal("a hook ran before Commit")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "first" {
		t.Errorf("hooks ran %v, want [first second]", order)
	}
	if err := tx.AfterCommit(func() {}); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("AfterCommit after Commit = %v, want ErrClosed (fn would never run)", err)
	}
	if err := tx.AfterCommit(nil); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("AfterCommit(nil) = %v, want ErrInvalidArgument", err)
	}
	if err := (*dbm.Tx)(nil).AfterCommit(func() {}); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("nil Tx: %v, want ErrInvalidArgument", err)
	}

	t.Run("commit unknown", func(t *testing.T) {
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)
		ran := false
		err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
			return tx.AfterCommit(func() { ran = true })
		})
		if !errors.Is(err, dbm.ErrCommitUnknown) || ran {
			t.Errorf("WithTx = %v, hook ran %v; want ErrCommitUnknown and no hook", err, ran)
		}
	})
	t.Run("fn commits itself", func(t *testing.T) {
		mock.ExpectBegin()
		mock.ExpectCommit()
		runs := 0
		err := m.WithTx(t.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
			if err := tx.AfterCommit(func() { runs++ }); err != nil {
				return err
			}
			return tx.Commit()
		})
		if err != nil || runs != 1 {
			t.Errorf("WithTx = %v, hook ran %d times; want once", err, runs)
		}
	})
}

// TestAfterCommitPanic: the panic reaches the caller, later hooks do not
// run, WithTx does not rerun, and the transaction is committed and ended.
func TestAfterCommitPanic(t *testing.T) {
	m, mock := newHookMock(t)
	mock.ExpectBegin()
	mock.ExpectCommit()
	runs, later := 0, false
	var tx *dbm.Tx
	got := func() (p any) {
		defer func() { p = recover() }()
		_ = m.WithTx(t.Context(), nil, func(ctx context.Context, x *dbm.Tx) error {
			runs++
			tx = x
			_ = x.AfterCommit(func() { panic("hook failed") })
			return x.AfterCommit(func() { later = true })
		})
		return nil
	}()
	if got != "hook failed" || runs != 1 || later {
		t.Errorf("panic %v, runs %d, later hook ran %v; want the hook's panic, one run, no later hook", got, runs, later)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after the panicking hook = %v, want nil (committed)", err)
	}
	if s := m.Stats(); s.Commits != 1 || s.Rollbacks != 0 || s.InUse != 0 || len(m.Leaks()) != 0 {
		t.Errorf("stats %+v, leaks %v; want one commit and nothing open", s, m.Leaks())
	}
}
