package dbm_test

import (
	"context"
	"database/sql"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// inTx runs use on a transaction of an SQLite manager with a table t (a,
// b), and rolls it back.
func (f *badFixture) inTx(use func(tx *dbm.Tx) error) error {
	m := f.sqlite()
	if _, err := m.Exec(f.ctx, "CREATE TABLE t (a INTEGER, b TEXT)"); err != nil {
		f.t.Fatal(err)
	}
	tx, err := m.BeginTx(f.ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	return use(tx)
}

// closedConn returns a Conn of an SQLite manager, closed.
func (f *badFixture) closedConn() *dbm.Conn {
	c, err := f.sqlite().Conn(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// pinnedBadCases are the bad inputs of Manager.Conn, Conn, savepoints and
// CopyFrom.
func pinnedBadCases(ctx context.Context) []badCase {
	var nilCtx context.Context
	var nilM *dbm.Manager
	var nilConn *dbm.Conn
	var nilTx *dbm.Tx
	rows := dbm.CopyRows([][]any{{1, "x"}})
	cols := []string{"a", "b"}
	copyIn := func(table string, columns []string, r func(yield func([]any, error) bool)) func(*dbm.Tx) error {
		return func(tx *dbm.Tx) error { _, err := tx.CopyFrom(ctx, table, columns, r); return err }
	}
	return []badCase{
		{"conn", "nil *Manager Conn", func(f *badFixture) error { _, err := nilM.Conn(ctx); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Conn", "receiver", "nil *dbm.Manager"}, nil},
		{"conn", "Conn with a nil ctx", func(f *badFixture) error { _, err := f.sqlite().Conn(nilCtx); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Conn", "ctx", "nil context"}, nil},
		{"conn", "Conn on a closed manager", func(f *badFixture) error { _, err := f.closed().Conn(ctx); return err },
			dbm.ErrClosed, managerError, []string{"conn", "manager is closed"}, nil},
		{"conn", "nil *Conn Exec", func(f *badFixture) error { _, err := nilConn.Exec(ctx, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "receiver", "nil *dbm.Conn"}, nil},
		{"conn", "nil *Conn Close", func(f *badFixture) error { return nilConn.Close() },
			dbm.ErrInvalidArgument, argumentError, []string{"Close", "receiver", "nil *dbm.Conn"}, nil},
		{"conn", "zero Conn BeginTx", func(f *badFixture) error { _, err := new(dbm.Conn).BeginTx(ctx, nil); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"BeginTx", "receiver", "Manager.Conn"}, nil},
		{"conn", "nil *Conn as Querier", func(f *badFixture) error { _, err := dbm.Select[int](ctx, nilConn, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Select", "q", "nil"}, nil},
		{"conn", "Conn.Get with a nil ctx", func(f *badFixture) error {
			c, err := f.sqlite().Conn(ctx)
			if err != nil {
				f.t.Fatal(err)
			}
			defer c.Close()
			var n int
			return c.Get(nilCtx, &n, "SELECT 1")
		}, dbm.ErrInvalidArgument, argumentError, []string{"Get", "ctx", "nil context"}, nil},
		{"conn", "Conn.BeginTx with a bad isolation level", func(f *badFixture) error {
			c, err := f.sqlite().Conn(ctx)
			if err != nil {
				f.t.Fatal(err)
			}
			defer c.Close()
			_, err = c.BeginTx(ctx, &sql.TxOptions{Isolation: 99})
			return err
		}, dbm.ErrInvalidArgument, argumentError, []string{"BeginTx", "opts.Isolation"}, nil},
		{"conn", "Exec after Close", func(f *badFixture) error { _, err := f.closedConn().Exec(ctx, "SELECT 1"); return err },
			dbm.ErrClosed, managerError, []string{"exec", "closed"}, nil},
		{"conn", "BeginTx after Close", func(f *badFixture) error { _, err := f.closedConn().BeginTx(ctx, nil); return err },
			dbm.ErrClosed, managerError, []string{"begin", "closed"}, nil},

		{"savepoint", "empty name", func(f *badFixture) error { return f.inTx(func(tx *dbm.Tx) error { return tx.Savepoint(ctx, "") }) },
			dbm.ErrInvalidArgument, argumentError, []string{"Savepoint", "name", "empty"}, nil},
		{"savepoint", "name that is not an identifier", func(f *badFixture) error {
			return f.inTx(func(tx *dbm.Tx) error { return tx.RollbackTo(ctx, `a"; DROP TABLE t; --`) })
		}, dbm.ErrInvalidArgument, argumentError, []string{"RollbackTo", "name", "not an identifier"}, nil},
		{"savepoint", "name starting with a digit", func(f *badFixture) error { return f.inTx(func(tx *dbm.Tx) error { return tx.Release(ctx, "1a") }) },
			dbm.ErrInvalidArgument, argumentError, []string{"Release", "name", "not an identifier"}, nil},
		{"savepoint", "nil *Tx Savepoint", func(f *badFixture) error { return nilTx.Savepoint(ctx, "a") },
			dbm.ErrInvalidArgument, argumentError, []string{"Savepoint", "receiver", "nil *dbm.Tx"}, nil},
		{"savepoint", "Savepoint with a nil ctx", func(f *badFixture) error { return f.inTx(func(tx *dbm.Tx) error { return tx.Savepoint(nilCtx, "a") }) },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "ctx", "nil context"}, nil},
		{"savepoint", "Savepoint after Commit", func(f *badFixture) error { return f.ended(true).Savepoint(ctx, "a") },
			dbm.ErrClosed, managerError, []string{"closed"}, nil},

		{"copy", "nil *Tx CopyFrom", func(f *badFixture) error { _, err := nilTx.CopyFrom(ctx, "t", cols, rows); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "receiver", "nil *dbm.Tx"}, nil},
		{"copy", "CopyFrom with a nil ctx", func(f *badFixture) error {
			return f.inTx(func(tx *dbm.Tx) error { _, err := tx.CopyFrom(nilCtx, "t", cols, rows); return err })
		}, dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "ctx", "nil context"}, nil},
		{"copy", "empty table", func(f *badFixture) error { return f.inTx(copyIn("", cols, rows)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid table", "empty name"}, nil},
		{"copy", "table with two dots", func(f *badFixture) error { return f.inTx(copyIn("a.b.c", cols, rows)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid table", "more than one dot"}, nil},
		{"copy", "no columns", func(f *badFixture) error { return f.inTx(copyIn("t", nil, rows)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid columns", "no column"}, nil},
		{"copy", "empty column", func(f *badFixture) error { return f.inTx(copyIn("t", []string{"a", ""}, rows)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid columns[1]", "empty name"}, nil},
		{"copy", "column twice", func(f *badFixture) error { return f.inTx(copyIn("t", []string{"a", "a"}, rows)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid columns", `"a" given twice (at 0 and 1)`}, nil},
		{"copy", "nil rows", func(f *badFixture) error { return f.inTx(copyIn("t", cols, nil)) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid rows", "nil sequence"}, nil},
		{"copy", "row of the wrong length", func(f *badFixture) error {
			return f.inTx(copyIn("t", cols, dbm.CopyRows([][]any{{1, "a"}, {2, "b"}, {3}})))
		}, dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid rows", "row 2 has 1 values, want 2"}, nil},
		{"copy", "nil row", func(f *badFixture) error { return f.inTx(copyIn("t", cols, dbm.CopyRows([][]any{nil}))) },
			dbm.ErrInvalidArgument, argumentError, []string{"CopyFrom", "invalid rows", "row 0 has 0 values, want 2"}, nil},
		{"copy", "CopyFrom after Rollback", func(f *badFixture) error { _, err := f.ended(false).CopyFrom(ctx, "t", cols, rows); return err },
			dbm.ErrClosed, managerError, []string{"copy", "closed"}, nil},
	}
}
