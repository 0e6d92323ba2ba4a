// Package dialwatch carries, in the context of one of the prober's
// connection attempts, what the attempt's dialer is to tell the prober:
// when the connection is made, and when the server first sends bytes on it
// (see dbm's prober: a server that has answered is waited for, a black hole
// is not). Package dbm's lib/pq dialer reports to it, and so does the pgx
// connector of package dbm/dbmpgx, set in [Pgx] when a program imports it:
// package dbm does not import pgx.
package dialwatch

import (
	"context"
	"database/sql/driver"
	"net"
)

// Watch is told how far one connection attempt got.
type Watch interface {
	Connected() // the connection (TCP or Unix socket) is made
	Answered()  // the server has sent bytes on it
}

type key struct{}

// With returns ctx carrying w: the connection attempts made with it report
// to w.
func With(ctx context.Context, w Watch) context.Context {
	return context.WithValue(ctx, key{}, w)
}

// From is the Watch that ctx carries; nil for the pool's own connection
// attempts, which nothing watches.
func From(ctx context.Context) Watch {
	w, _ := ctx.Value(key{}).(Watch)
	return w
}

// Dialed tells w that c is made, and returns c wrapped so that the first
// read that gets bytes tells w that the server answered.
func Dialed(c net.Conn, w Watch) net.Conn {
	w.Connected()
	return &answeringConn{Conn: c, w: w}
}

// answeringConn is a watched socket: its first read with bytes calls
// w.Answered.
type answeringConn struct {
	net.Conn
	w Watch // nil once told
}

func (c *answeringConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.w != nil {
		c.w.Answered()
		c.w = nil
	}
	return n, err
}

// Pgx makes a pgx connector for dsn whose connection attempts report to
// the Watch in their context. Set by package dbm/dbmpgx's init; nil when
// the program does not import it. It is written only during package
// initialisation.
var Pgx func(dsn string) (driver.Connector, error)
