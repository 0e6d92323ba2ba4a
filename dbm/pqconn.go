package dbm

import (
	"context"
	"database/sql/driver"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
)

// lib/pq honours a caller's context only by asking the server to cancel
// (a cancel request on a new connection) and then waiting for the server's
// answer, with no deadline on its socket; while it connects, it watches the
// context only during the TCP dial. On a dead network (a black hole: a
// failed link, a firewall that drops packets, a hung server) that answer
// never comes, and a call with a deadline of 100ms waits until TCP gives
// up, minutes later, holding its pool connection all along. [New] gives
// lib/pq a dialer that bounds these waits by the caller's context:
//
//   - while a connection is being made, the context's end sets a deadline
//     on the socket, so the handshake fails at once;
//   - lib/pq sends BEGIN without watching the context at all: the
//     connection's BeginTx (see [pqConn]) cuts the socket when the context
//     ends before the server answered;
//   - once it is made, a second dial on its dialer can only be lib/pq's
//     cancel request for it, sent because a call's context ended (see
//     lib/pq's watchCancel). The dialer then gives the server
//     [pqCancelGrace] to answer the cancellation, as it does at once on a
//     working network, and otherwise ends the call's wait by setting a
//     deadline on the connection's socket. lib/pq closes a connection after
//     a cancelled call anyway, so nothing usable is lost. The cancel request
//     itself may wait for the server no longer than lib/pq's own bound for
//     dialling it.

// pqCancelGrace is how long a call whose context ended waits for the
// server's answer to lib/pq's cancel request before its socket is cut.
var pqCancelGrace = 100 * time.Millisecond

// longAgo is a deadline that has passed: it fails blocked reads and writes.
var longAgo = time.Unix(1, 0)

// pqConnector makes lib/pq connections, each with a [pqDialer] of its own.
type pqConnector struct {
	cfg pq.Config
	err error // the DSN did not parse: every Connect reports it, as lib/pq's Open would
}

func newPQConnector(dsn string) *pqConnector {
	cfg, err := pq.NewConfig(dsn)
	return &pqConnector{cfg: cfg, err: err}
}

// Connect makes one connection with a dialer of its own, its handshake
// bounded by ctx.
func (c *pqConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.err != nil {
		return nil, c.err
	}
	pc, err := pq.NewConnectorConfig(c.cfg.Clone())
	if err != nil {
		return nil, err
	}
	d := &pqDialer{connecting: ctx}
	pc.Dialer(d)
	conn, err := pc.Connect(ctx)
	made := d.connected()
	if err != nil {
		return nil, err // not conn: lib/pq returns a typed nil with its error
	}
	if !made {
		// ctx ended just as the handshake finished: its deadline may be
		// set on the socket already, so this connection cannot be used.
		_ = conn.Close()
		return nil, context.Cause(ctx)
	}
	if pcn, ok := conn.(pqDriverConn); ok {
		return &pqConn{pqDriverConn: pcn, d: d}, nil
	}
	return conn, nil
}

// pqDriverConn is what database/sql uses of a lib/pq connection.
type pqDriverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// pqConn is a lib/pq connection whose BEGIN ends when its context does.
// Everything else is lib/pq's own.
type pqConn struct {
	pqDriverConn
	d *pqDialer
}

// BeginTx is lib/pq's, with the socket cut when ctx ends before the server
// answered BEGIN (lib/pq does not watch ctx then). The connection is lost
// then, as it is whenever lib/pq's own cancellation has to step in.
func (c *pqConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	stop := context.AfterFunc(ctx, c.d.cut)
	defer stop()
	return c.pqDriverConn.BeginTx(ctx, opts)
}

// Unwrap returns lib/pq's own connection, for lib/pq's functions that take
// one (pq.SetNoticeHandler, pq.SetNotificationHandler) when it is reached
// through [sql.Conn.Raw].
func (c *pqConn) Unwrap() driver.Conn { return c.pqDriverConn }

// Driver returns lib/pq's driver.
func (c *pqConnector) Driver() driver.Driver { return &pq.Driver{} }

// pqDial dials every lib/pq socket: net.Dialer's zero value (as lib/pq's
// default dialer) unless a test set it (see export_test.go).
var pqDial atomic.Pointer[func(ctx context.Context, network, addr string) (net.Conn, error)]

func dialPQ(ctx context.Context, network, addr string) (net.Conn, error) {
	if f := pqDial.Load(); f != nil {
		return (*f)(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// pqDialer dials the sockets of one lib/pq connection: the connection's own,
// and then its cancel requests.
type pqDialer struct {
	// connecting is the context of the Connect call. Not the one lib/pq
	// dials with: with connect_timeout, lib/pq dials with a context of its
	// own, which it cancels as soon as the dial returns.
	connecting context.Context

	mu    sync.Mutex // protects the fields below
	conn  net.Conn   // the connection's socket: the last one dialled while connecting
	watch func() bool
	made  bool // Connect has finished with the socket
}

func (d *pqDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d *pqDialer) DialTimeout(network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}

// DialContext dials a socket for the connection (see the comment at the
// top of this file).
func (d *pqDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	made := d.made
	d.mu.Unlock()
	if made {
		// A cancel request for the connection: a call on it is waiting.
		// The grace starts now, not once the dial is through: on a dead
		// network the dial itself hangs (lib/pq allows it 10s).
		time.AfterFunc(pqCancelGrace, d.cut)
		c, err := dialPQ(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		return c, nil
	}
	c, err := dialPQ(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if w := dialwatch.From(d.connecting); w != nil {
		c = dialwatch.Dialed(c, w) // a probe's connection (see prober.thereLocked)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The connection's own socket (lib/pq dials again to try another host
	// or TLS setting): Connect's context bounds the handshake.
	if d.watch != nil {
		d.watch()
	}
	d.conn = c
	d.watch = context.AfterFunc(d.connecting, func() { _ = c.SetDeadline(longAgo) })
	return c, nil
}

// connected ends the watch on the connecting context and reports whether
// it ended before the context did.
func (d *pqDialer) connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.made = true
	return d.watch == nil || d.watch()
}

// cut fails the connection's blocked and future reads and writes.
func (d *pqDialer) cut() {
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c != nil {
		_ = c.SetDeadline(longAgo)
	}
}
