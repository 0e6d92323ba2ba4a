package dbm

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
)

// Conn is one connection taken from the pool and kept for the caller until
// [Conn.Close]: every statement on it runs on the same database session, so
// what a statement leaves in the session (SET, a temporary table, a
// session-level advisory lock, a MySQL user variable) is seen by the next.
// It is a [Querier]: the generic helpers take it.
//
// Statements on a Conn are never retried, and a broken connection is not
// replaced: the session state lives on that one connection, and running a
// statement elsewhere would run it without it (a read of a temporary table
// would fail, a SET would be silently lost). The error of a statement is
// returned as it is; after a connection error the Conn is useless and should
// be closed.
//
// A Conn must be closed. One dropped without Close is reported by
// [Manager.Leaks] (kind "conn") and reclaimed like a dropped [Rows] or [Tx]
// (see docs/leaks.md).
type Conn struct {
	s    session
	own  *ownedConn // the pooled connection; discarded by release
	leak *leakNode  // see leaks.go
	done atomic.Bool

	mu   sync.Mutex // protects open
	open []openOnConn
}

// openOnConn is a [Rows] or [Tx] opened on a Conn, which Close ends first.
type openOnConn struct {
	rows *Rows
	tx   *Tx
}

// Conn takes a connection from the pool and keeps it for the caller's
// statements until [Conn.Close]; see [Conn]. With Config.AcquireTimeout
// set, the wait for a connection is bounded by it: past it, an error
// matching [ErrPoolTimeout]. ctx bounds only the wait; the Conn lives until
// Close.
func (m *Manager) Conn(ctx context.Context) (*Conn, error) {
	if c := m.routed(); c != nil {
		return c.conn(ctx)
	}
	if err := m.check(ctx, "Conn"); err != nil {
		return nil, err
	}
	var sc *sql.Conn
	var use connUse
	// Taking a connection is harmless to repeat: a broken pooled one is
	// replaced (see replaceBadConns) by checking it with a ping first, so
	// that the Conn starts on a connection that works.
	err := m.replaceBadConns(ctx, func() error {
		c, u, err := m.acquire(ctx, "conn", "")
		if err != nil {
			return err
		}
		if err := c.PingContext(ctx); err != nil {
			u.giveBack(ctx, c)
			m.queue.give()
			return m.wrap(ctx, "conn", "", err)
		}
		sc, use = c, u
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &Conn{own: own(context.Background(), sc, m.queue, nil)} // ctx bounds only the wait
	c.own.discard = true
	c.own.keep(ctx, use.kept())
	c.s = session{m: m, ex: sc, pin: c}
	m.connOpened(c)
	return c, nil
}

// Close ends what is still open on the connection (it closes its [Rows] and
// rolls back its [Tx]) and then closes the connection itself: it is not
// given back to the pool, because the session state the caller left on it
// (settings, temporary tables, advisory locks, user variables) would reach
// the next user of the pool. The pool opens a new connection when it needs
// one. Close is idempotent; statements on a closed Conn return an error
// matching [ErrClosed].
func (c *Conn) Close() error {
	if err := c.usable("Close"); err != nil {
		return err
	}
	if c.done.Swap(true) {
		return nil
	}
	c.mu.Lock()
	open := c.open
	c.open = nil
	c.mu.Unlock()
	for _, o := range open {
		if o.rows != nil {
			_ = o.rows.Close()
		} else {
			_ = o.tx.Rollback()
		}
	}
	defer c.s.m.connClosed(c)
	c.own.release()
	return nil
}

// add remembers rows or a transaction opened on c, for Close; it forgets
// those that were closed meanwhile.
func (c *Conn) add(o openOnConn) {
	c.mu.Lock()
	c.open = slices.DeleteFunc(c.open, func(o openOnConn) bool {
		if o.rows != nil {
			return o.rows.closed.Load()
		}
		return o.tx.done.Load()
	})
	c.open = append(c.open, o)
	c.mu.Unlock()
}

// ExecuteQuery is [Manager.ExecuteQuery] on the connection.
func (c *Conn) ExecuteQuery(ctx context.Context, dest any, query string, args ...any) error {
	if err := c.usable("ExecuteQuery"); err != nil {
		return err
	}
	return c.s.executeQuery(ctx, dest, query, args)
}

// Get is [Manager.Get] on the connection.
func (c *Conn) Get(ctx context.Context, dest any, query string, args ...any) error {
	if err := c.usable("Get"); err != nil {
		return err
	}
	return c.s.get(ctx, dest, query, args)
}

// Exec is [Manager.Exec] on the connection.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := c.usable("Exec"); err != nil {
		return nil, err
	}
	return c.s.exec(ctx, query, args)
}

// Query is [Manager.Query] on the connection. Close the rows before running
// another statement on the connection.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if err := c.usable("Query"); err != nil {
		return nil, err
	}
	return c.s.query(ctx, query, args)
}

// BeginTx starts a transaction on the connection: its statements see the
// session state the Conn's earlier statements left. End it before closing
// the Conn (Close rolls back one still open). With a broken connection it
// fails: it cannot move to another one.
func (c *Conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	if err := c.usable("BeginTx"); err != nil {
		return nil, err
	}
	m := c.s.m
	if err := m.check(ctx, "BeginTx"); err != nil {
		return nil, err
	}
	if c.done.Load() {
		return nil, m.newError(ClassClosed, "", "begin", "", sql.ErrConnDone)
	}
	if err := checkIsolation(m.driver, opts); err != nil {
		return nil, err
	}
	ctx, trace := m.traceTxStart(ctx)
	stx, err := c.own.conn.BeginTx(ctx, opts)
	if err != nil {
		err = m.wrap(ctx, "begin", "", err)
		m.traceTxEnd(ctx, trace, false, err)
		return nil, err
	}
	tx := &Tx{tx: stx, ctx: ctx, trace: trace}
	tx.s = session{m: m, ex: stx, tx: tx, pin: c}
	m.txBegun(tx)
	c.add(openOnConn{tx: tx})
	return tx, nil
}

func (c *Conn) session() session {
	if c == nil {
		return session{}
	}
	return c.s
}

// usable rejects a nil *Conn (the caller ignored Manager.Conn's error) and
// a Conn not made by Manager.Conn.
func (c *Conn) usable(fn string) error {
	if c == nil || c.own == nil {
		return &ArgumentError{Func: fn, Arg: "receiver", Reason: "nil *dbm.Conn (did Manager.Conn fail?); get a Conn from Manager.Conn"}
	}
	return nil
}
