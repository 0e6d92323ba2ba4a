package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
)

// ownedConn is a connection taken from the pool (with [Manager.acquire]) for
// one [Tx], or for one [Rows] that a statement on a connection of its own
// returned. The Tx or Rows owns it: Commit, Rollback and Rows.Close give it
// back to the pool, and so does the leak detector when it reclaims a dropped
// wrapper (see reclaim). It never refers to the wrapper.
//
// database/sql ends a transaction or rows whose context is canceled, which on
// the pool would give the connection back; on a [sql.Conn] it only frees the
// Conn, which stays checked out. stop undoes the context.AfterFunc that
// closes the Conn then, so that a canceled context returns the connection on
// this path too. No goroutine runs unless the context ends first.
type ownedConn struct {
	conn *sql.Conn
	stop func() bool
}

// own makes conn owned by a Tx or Rows begun with ctx. own(ctx, nil) is nil.
func own(ctx context.Context, conn *sql.Conn) *ownedConn {
	if conn == nil {
		return nil
	}
	// Conn.Close waits until the Tx or Rows on it have let it go
	// (database/sql ends them itself when ctx is done).
	return &ownedConn{conn: conn, stop: context.AfterFunc(ctx, func() { _ = conn.Close() })}
}

// release gives the connection back to the pool. The rows or transaction on
// it must be closed first, or release waits for them. It is idempotent and
// does nothing on nil.
func (c *ownedConn) release() {
	if c == nil {
		return
	}
	c.stop()
	_ = c.conn.Close() // sql.ErrConnDone after the first time: ignored
}

// beginTx starts the transaction of [Manager.BeginTx]. With
// Config.AcquireTimeout set, the wait for a connection is bounded like a
// statement's (an error matching [ErrPoolTimeout]) and the transaction runs
// on a [sql.Conn] that the returned ownedConn holds; without it, it is
// database/sql's own BeginTx at no extra cost.
func (m *Manager) beginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, *ownedConn, error) {
	if m.retryPol.acquire <= 0 {
		stx, err := m.db.BeginTx(ctx, opts)
		return stx, nil, err
	}
	var err error
	for range badConnTries {
		var conn *sql.Conn
		if conn, err = m.acquire(ctx, "begin", ""); err != nil {
			return nil, nil, err
		}
		var stx *sql.Tx
		if stx, err = conn.BeginTx(ctx, opts); err == nil {
			return stx, own(ctx, conn), nil
		}
		_ = conn.Close() // database/sql already discarded a bad one
		if !errors.Is(err, driver.ErrBadConn) {
			break
		}
	}
	return nil, nil, err
}

// ping is [Manager.Ping]'s round trip, on a connection taken with
// [Manager.acquire] when Config.AcquireTimeout is set, so that a health
// check on an exhausted pool fails with [ErrPoolTimeout] instead of waiting.
func (m *Manager) ping(ctx context.Context) error {
	if m.retryPol.acquire <= 0 {
		return m.db.PingContext(ctx)
	}
	var err error
	for range badConnTries {
		var conn *sql.Conn
		if conn, err = m.acquire(ctx, "ping", ""); err != nil {
			return err
		}
		err = conn.PingContext(ctx)
		_ = conn.Close()
		if !errors.Is(err, driver.ErrBadConn) {
			break
		}
	}
	return err
}

// badConnTries is how often beginTx and ping take another connection when
// the one they got is broken (driver.ErrBadConn), as database/sql's own
// BeginTx and PingContext do: neither has done anything on the server yet.
const badConnTries = 3
