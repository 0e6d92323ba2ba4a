package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/copyhook"
)

// ownedConn is what a [Tx] or [Rows] holds of the pool until it ends: a
// connection taken from the pool (with [Manager.acquire]) for one Tx, or for
// one Rows that a statement on a connection of its own returned, and the
// permit of the manager's queue (see connQueue) that came with it; or the
// permit alone, for a Tx or Rows on the pool itself. The Tx or Rows owns it:
// Commit, Rollback and Rows.Close give it back, and so does the leak
// detector when it reclaims a dropped wrapper (see reclaim). It never
// refers to the wrapper.
//
// database/sql ends a transaction or rows whose context is canceled, which on
// the pool would give the connection back; on a [sql.Conn] it only frees the
// Conn, which stays checked out. stop undoes the context.AfterFunc that
// closes the Conn and gives the permit back then, so that a canceled
// context returns the connection on this path too. No goroutine runs unless
// the context ends first.
type ownedConn struct {
	conn *sql.Conn   // nil: a Tx or Rows on the pool, holding a permit only
	stop func() bool // nil: the context never ends
	// discard: release closes the connection instead of giving it back,
	// because it carries a caller's session state (a [Conn]'s).
	discard bool
	queue   *connQueue  // whose permit it holds; nil: none
	held    atomic.Bool // the permit is still held
	// use is reported to the ReleaseTracer by the first release; nil
	// without one.
	use atomic.Pointer[connUse]
}

// own makes conn, and a permit of q when q is not nil, owned by a Tx or
// Rows begun with ctx; use (nil without a [ReleaseTracer]) is its
// connUse.kept(). own(ctx, nil, nil, nil) is nil.
func own(ctx context.Context, conn *sql.Conn, q *connQueue, use *connUse) *ownedConn {
	if conn == nil && q == nil {
		return nil
	}
	c := &ownedConn{conn: conn, queue: q}
	c.held.Store(q != nil)
	if ctx.Done() != nil {
		// Conn.Close waits until the Tx or Rows on it have let it go
		// (database/sql ends them itself when ctx is done).
		c.stop = context.AfterFunc(ctx, c.end)
	}
	c.keep(ctx, use)
	return c
}

// keep sets the connUse that release reports, with the context ctx.
func (c *ownedConn) keep(ctx context.Context, use *connUse) {
	if use != nil {
		use.ctx = ctx
		c.use.Store(use)
	}
}

// end is what a context that ended does to what it owns.
func (c *ownedConn) end() {
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.givePermit()
}

// givePermit gives the permit back to the queue, once.
func (c *ownedConn) givePermit() {
	if c.queue != nil && c.held.Swap(false) {
		c.queue.give()
	}
}

// release gives the connection back to the pool, then the permit to the
// queue. The rows or transaction on it must be closed first, or release
// waits for them. It is idempotent and does nothing on nil.
func (c *ownedConn) release() {
	if c == nil {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	if c.conn != nil {
		if c.discard {
			// database/sql closes a connection whose Raw returns ErrBadConn.
			_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = c.conn.Close() // sql.ErrConnDone after the first time: ignored
	}
	if u := c.use.Swap(nil); u != nil {
		u.end(u.ctx)
	}
	c.givePermit()
}

// beginTx starts the transaction of [Manager.BeginTx]. It waits its turn
// in the manager's queue like a statement (bounded by
// Config.AcquireTimeout: an error matching [ErrPoolTimeout]) and then runs
// database/sql's own BeginTx; the returned ownedConn holds the permit (a
// [Wrap] pool without a bound and with [NoAcquireTimeout] has no queue:
// there BEGIN waits in database/sql, bounded by ctx alone). On pgx with
// package dbm/dbmpgx imported, the transaction runs on a [sql.Conn] that
// the ownedConn holds ([Tx.CopyFrom] reaches pgx's connection through it).
// On every path a broken connection is replaced (see replaceBadConns).
func (m *Manager) beginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, *ownedConn, error) {
	var stx *sql.Tx
	// pgx's COPY (Tx.CopyFrom with dbm/dbmpgx) needs the transaction's
	// sql.Conn: on pgx with it imported, transactions take one.
	needConn := m.driver == DriverPgx && copyhook.Pgx != nil
	if !needConn {
		// The pool's own BeginTx, after the queue's permit (if any), which
		// bounds the wait: database/sql then has a connection for it.
		var use connUse
		err := m.replaceBadConns(ctx, func() (err error) {
			if m.queue != nil {
				if use, err = m.enter(ctx, "begin", ""); err != nil {
					return err
				}
			}
			if stx, err = m.db.BeginTx(ctx, opts); err != nil {
				use.end(ctx)
				m.queue.give()
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		return stx, own(ctx, nil, m.queue, use.kept()), nil
	}
	var conn *sql.Conn
	var use connUse
	err := m.replaceBadConns(ctx, func() error {
		c, u, err := m.acquire(ctx, "begin", "")
		if err != nil {
			return err
		}
		if stx, err = c.BeginTx(ctx, opts); err != nil {
			u.giveBack(ctx, c) // database/sql already discarded a bad one
			m.queue.give()
			return err
		}
		conn, use = c, u
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return stx, own(ctx, conn, m.queue, use.kept()), nil
}

// ping is [Manager.Ping]'s round trip, after its turn in the manager's
// queue, so that a health check on an exhausted pool fails with
// [ErrPoolTimeout] instead of waiting, and one on a database known down
// fails fast (see prober). (A [Wrap] pool without a bound and with
// [NoAcquireTimeout] has no queue: its ping goes straight to the pool.)
// On either path a broken connection is replaced (see replaceBadConns):
// otherwise, after a server restart, Ping would report the server down
// while it is up.
func (m *Manager) ping(ctx context.Context) error {
	if m.queue != nil {
		return m.replaceBadConns(ctx, func() error {
			use, err := m.enter(ctx, "ping", "")
			if err != nil {
				return err
			}
			err = m.db.PingContext(ctx)
			use.end(ctx)
			m.queue.give()
			return err
		})
	}
	return m.replaceBadConns(ctx, func() error { return m.db.PingContext(ctx) })
}

// replaceBadConns runs try, which takes a connection from the pool and uses
// it, and runs it again while the connection turns out to be broken (see
// brokenConn and [replacer]): typically closed by the server while it sat
// idle in the pool (a restart, a failover, a terminated backend), and then
// often all the others are too.
//
// database/sql replaces a broken connection by itself only in some cases: a
// statement or BEGIN on its own pool path that fails with driver.ErrBadConn
// (the last time on a new connection). It does not on a [sql.Conn], nor for
// PingContext, nor when lib/pq reports the broken connection as the network
// error it met (a reset) rather than driver.ErrBadConn. The manager cannot
// ask database/sql for a new connection; it can run out of broken ones
// instead. Only work that is harmless to repeat may use it (a read, BEGIN, a
// ping): the connection may break after the work reached the server.
// Statements get the same from [Manager.retry].
func (m *Manager) replaceBadConns(ctx context.Context, try func() error) error {
	err := try()
	if !brokenConn(err) {
		return err // the common case: no look at the pool's counts
	}
	var r replacer
	for r.start(m); brokenConn(err) && r.again(ctx); {
		err = try()
	}
	return err
}

// replacer decides whether work whose connection broke runs again. First
// at once, as many times as there are open connections and one more:
// database/sql discards each broken connection, so the last of these tries
// reaches a new one at the latest. A new connection can break too: on a
// loaded machine a server that is ending connections (a failover, an
// administrator terminating backends) may end it before the work is
// through, however quickly it is retried. So the work then goes on running
// on new connections, pausing as the retry policy does between attempts,
// for as long as Config.ConnectTimeout allows from the first broken
// connection of the call (and the caller's context; only when retries are
// on). None of these runs uses up a retry attempt: a server that cannot be
// reached at all fails the dial instead, which is not a broken connection,
// and the retry policy takes over. The zero replacer is ready for start.
type replacer struct {
	p      *retryPolicy
	atOnce int       // tries left without a pause
	n      int       // tries after a pause so far
	until  time.Time // no try starts after this; set by the first start
}

// start begins a run of replacements: the call's first, or the next after
// a retry attempt. The window runs from the first.
func (r *replacer) start(m *Manager) {
	if r.p == nil {
		r.p = &m.retryPol
		if r.p.attempts > 1 {
			r.until = r.p.clock.now().Add(r.p.replaceFor)
		}
	}
	r.atOnce = m.db.Stats().OpenConnections + 1
}

// again reports whether to run the work once more, after the pause it
// calls for. It is false when the pause would end past the replacer's
// window or ctx's deadline, or ctx ends during it.
func (r *replacer) again(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if r.atOnce > 0 {
		r.atOnce--
		return true
	}
	r.n++
	d := r.p.backoff(r.n)
	end := r.p.clock.now().Add(d)
	if dl, ok := ctx.Deadline(); end.After(r.until) || ok && !end.Before(dl) {
		return false
	}
	return r.p.clock.sleep(ctx, d) == nil
}

// brokenConn reports whether err says that the connection the work ran on
// is broken: [driver.ErrBadConn], or a reset or closed socket met while
// reading or writing (lib/pq reports those as they are, after marking the
// connection bad). A failure to connect at all (a refused dial: the server
// is down; a login that ConnectTimeout cut short) is not: there is no
// connection to replace.
func brokenConn(err error) bool {
	if err == nil {
		return false
	}
	var mr *midResult
	if errors.As(err, &mr) {
		return false // the statement ran: a retry, not a replacement
	}
	if dialTimedOut(err) || errors.Is(err, errDatabaseDown) {
		return false // the server did not answer in time, or is down: nothing to replace
	}
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && (oe.Op == "read" || oe.Op == "write")
}

// midResult marks the error of a statement that failed while its rows were
// read: the connection worked when the statement started, so its loss is a
// fault of the statement (retried, if at all, by the retry policy), not a
// stale pooled connection to replace at once.
type midResult struct{ err error }

func (e *midResult) Error() string { return e.err.Error() }
func (e *midResult) Unwrap() error { return e.err }
