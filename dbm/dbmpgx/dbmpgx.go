// Package dbmpgx registers the pgx driver ("pgx", as
// github.com/jackc/pgx/v5/stdlib does) and lets [dbm.Tx.CopyFrom] load rows
// with PostgreSQL's COPY through pgx's own CopyFrom. Import it for its side
// effect instead of pgx's stdlib:
//
//	import _ "github.com/dbmanager-go/dbmanager/dbm/dbmpgx"
//
// Package dbm does not import pgx (programs on another driver do not compile
// it); without this package, CopyFrom on pgx falls back to multi-row
// INSERT statements, which are correct but several times slower.
//
// It also gives [dbm.New] a pgx connector whose connection attempts tell
// the manager's prober how far they got (the connection made, the server's
// first bytes), so that while the database is down, calls fail fast within
// 10ms behind a black hole and still wait for a server that is starting
// (see docs/reliability.md, "Fail fast while the database is down").
package dbmpgx

import (
	"context"
	"database/sql/driver"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // registers "pgx"; its *stdlib.Conn has Conn() *pgx.Conn

	"github.com/dbmanager-go/dbmanager/dbm/internal/copyhook"
	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
)

func init() {
	copyhook.Pgx = copyFrom
	dialwatch.Pgx = watchedConnector
}

// watchedConnector is pgx's connector for dsn, as stdlib's OpenConnector
// would make, with a DialFunc that tells the [dialwatch.Watch] in the
// context of a connection attempt (a prober's) how far it got. The DSN is
// parsed here once, to report a bad one at New, and again for every
// connection, as pgx's own driver does: what parsing reads besides the DSN
// (a password file, PG* variables, certificate files) may have changed
// since, e.g. a rotated password.
func watchedConnector(dsn string) (driver.Connector, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, err
	}
	return connector{dsn: dsn}, nil
}

// connector makes pgx connections whose dials report to a dialwatch.Watch.
type connector struct{ dsn string }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return nil, err
	}
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if w := dialwatch.From(ctx); w != nil {
			c = dialwatch.Dialed(c, w)
		}
		return c, nil
	}
	return stdlib.GetConnector(*cfg).Connect(ctx)
}

func (c connector) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// copyFrom runs pgx's CopyFrom (the binary COPY protocol) on the pgx
// connection under the database/sql connection conn, inside whatever
// transaction is open on it.
func copyFrom(ctx context.Context, conn any, table, columns []string, next func() ([]any, bool, error)) (int64, bool, error) {
	c, ok := conn.(interface{ Conn() *pgx.Conn })
	if !ok {
		return 0, false, nil
	}
	n, err := c.Conn().CopyFrom(ctx, pgx.Identifier(table), columns, &source{next: next})
	return n, true, err
}

// source is pgx's CopyFromSource over dbm's row puller.
type source struct {
	next func() ([]any, bool, error)
	row  []any
	err  error
}

func (s *source) Next() bool {
	var ok bool
	s.row, ok, s.err = s.next()
	return ok && s.err == nil
}

func (s *source) Values() ([]any, error) { return s.row, nil }

func (s *source) Err() error { return s.err }
