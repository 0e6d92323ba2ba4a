package dbm_test

// Transactions against the shared PostgreSQL server (lib/pq); the
// helpers (pgOpen, pgCreateUsers, ...) are in postgres_test.go.

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestPostgresTransactions covers WithTx (commit, rollback on error,
// rollback on panic) and BeginTx (deferred Rollback after Commit, use after
// the end).
func TestPostgresTransactions(t *testing.T) {
	t.Parallel()
	m := pgOpen(t)
	ctx := t.Context()
	pgCreateUsers(t, ctx, m)
	insert := func(ctx context.Context, q dbm.Querier, id int64) error {
		_, err := q.Exec(ctx, "INSERT INTO users (id, name, email, active) VALUES (?, ?, ?, ?)", id, "tx user", fmt.Sprintf("tx%d@example.com", id), true)
		return err
	}

	t.Run("WithTx commits", func(t *testing.T) {
		before := m.Stats()
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if err := insert(ctx, tx, 100); err != nil {
				return err
			}
			if pgUserExists(t, ctx, m, 100) {
				t.Error("an uncommitted row is visible outside the transaction")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("WithTx: %v", err)
		}
		if !pgUserExists(t, ctx, m, 100) {
			t.Error("the committed row is missing")
		}
		after := m.Stats()
		if after.Commits != before.Commits+1 || after.Rollbacks != before.Rollbacks {
			t.Errorf("Commits %d -> %d, Rollbacks %d -> %d; want one more commit and no rollback", before.Commits, after.Commits, before.Rollbacks, after.Rollbacks)
		}
		pgWantIdle(t, m)
	})

	t.Run("WithTx rolls back on error", func(t *testing.T) {
		before := m.Stats()
		errFn := errors.New("fn failed")
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if err := insert(ctx, tx, 101); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errFn)
		})
		if !errors.Is(err, errFn) {
			t.Errorf("WithTx = %v, want the function's error", err)
		}
		if pgUserExists(t, ctx, m, 101) {
			t.Error("the row of a failed transaction was written")
		}
		if after := m.Stats(); after.Rollbacks != before.Rollbacks+1 || after.Commits != before.Commits {
			t.Errorf("Rollbacks %d -> %d, Commits %d -> %d; want one more rollback and no commit", before.Rollbacks, after.Rollbacks, before.Commits, after.Commits)
		}
		pgWantIdle(t, m)
	})

	t.Run("WithTx rolls back on a database error", func(t *testing.T) {
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if err := insert(ctx, tx, 102); err != nil {
				return err
			}
			return insert(ctx, tx, 1) // duplicate key
		})
		if !errors.Is(err, dbm.ErrUniqueViolation) {
			t.Errorf("WithTx = %v, want an error matching dbm.ErrUniqueViolation", err)
		}
		if pgUserExists(t, ctx, m, 102) {
			t.Error("the row of a failed transaction was written")
		}
		pgWantIdle(t, m)
	})

	t.Run("WithTx rolls back on panic and re-panics", func(t *testing.T) {
		before := m.Stats()
		type boom struct{ msg string }
		var recovered any
		func() {
			defer func() { recovered = recover() }()
			_ = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
				if err := insert(ctx, tx, 103); err != nil {
					t.Errorf("insert: %v", err)
				}
				panic(boom{"inside the transaction"})
			})
		}()
		if recovered != (boom{"inside the transaction"}) {
			t.Errorf("recovered %#v, want the original panic value", recovered)
		}
		if pgUserExists(t, ctx, m, 103) {
			t.Error("the row of a panicking transaction was written")
		}
		if after := m.Stats(); after.Rollbacks != before.Rollbacks+1 {
			t.Errorf("Rollbacks %d -> %d, want one more", before.Rollbacks, after.Rollbacks)
		}
		pgWantIdle(t, m)
	})

	t.Run("deferred Rollback after Commit is a no-op", func(t *testing.T) {
		before := m.Stats()
		func() {
			tx, err := m.BeginTx(ctx, nil)
			if err != nil {
				t.Fatalf("BeginTx: %v", err)
			}
			defer func() {
				if err := tx.Rollback(); err != nil {
					t.Errorf("Rollback after Commit = %v, want nil", err)
				}
			}()
			if err := insert(ctx, tx, 104); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
		}()
		if !pgUserExists(t, ctx, m, 104) {
			t.Error("the committed row is missing after the deferred Rollback")
		}
		after := m.Stats()
		if after.Commits != before.Commits+1 || after.Rollbacks != before.Rollbacks {
			t.Errorf("Commits %d -> %d, Rollbacks %d -> %d; want one more commit and no rollback", before.Commits, after.Commits, before.Rollbacks, after.Rollbacks)
		}
		pgWantIdle(t, m)
	})

	for _, end := range []string{"Commit", "Rollback"} {
		t.Run("Tx used after "+end, func(t *testing.T) {
			tx, err := m.BeginTx(ctx, nil)
			if err != nil {
				t.Fatalf("BeginTx: %v", err)
			}
			if end == "Commit" {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatalf("%s: %v", end, err)
			}
			pgWantIdle(t, m)
			uses := []struct {
				name string
				call func() error
			}{
				{"ExecuteQuery", func() error { var us []pgUser; return tx.ExecuteQuery(ctx, &us, "SELECT * FROM users") }},
				{"Get", func() error { var u pgUser; return tx.Get(ctx, &u, "SELECT * FROM users WHERE id = ?", 1) }},
				{"Exec", func() error { return insert(ctx, tx, 105) }},
				{"Query", func() error {
					rows, err := tx.Query(ctx, "SELECT 1")
					if err == nil {
						rows.Close()
					}
					return err
				}},
				{"Select", func() error { _, err := dbm.Select[pgUser](ctx, tx, "SELECT * FROM users"); return err }},
				{"One", func() error { _, err := dbm.One[int64](ctx, tx, "SELECT 1"); return err }},
				{"Iter", func() error {
					for _, err := range dbm.Iter[int64](ctx, tx, "SELECT 1") {
						return err
					}
					return errors.New("Iter yielded nothing")
				}},
				{"Commit", tx.Commit},
			}
			for _, u := range uses {
				err := u.call()
				if !errors.Is(err, dbm.ErrClosed) {
					t.Errorf("%s after %s = %v, want an error matching dbm.ErrClosed", u.name, end, err)
				}
			}
			if err := tx.Rollback(); err != nil {
				t.Errorf("Rollback after %s = %v, want nil", end, err)
			}
			if pgUserExists(t, ctx, m, 105) {
				t.Errorf("Exec after %s wrote a row", end)
			}
			pgWantIdle(t, m)
		})
	}
}
