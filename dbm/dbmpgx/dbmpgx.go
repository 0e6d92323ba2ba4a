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
package dbmpgx

import (
	"context"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"; its *stdlib.Conn has Conn() *pgx.Conn

	"github.com/dbmanager-go/dbmanager/dbm/internal/copyhook"
)

func init() { copyhook.Pgx = copyFrom }

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
