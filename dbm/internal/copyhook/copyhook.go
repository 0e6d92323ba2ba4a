// Package copyhook lets package dbm use pgx's COPY without importing pgx:
// package dbm/dbmpgx, which imports pgx, sets [Pgx] when a program imports
// it, and [dbm.Tx.CopyFrom] calls it on the transaction's pgx connection.
package copyhook

import "context"

// Func copies the rows that next returns (ok false: no more) into table
// (its schema and name, or its name alone) through the driver connection
// conn (what database/sql's Conn.Raw passes) and returns how many rows the
// server copied. It reports handled false, without doing anything, when
// conn is not a connection it can copy through.
type Func func(ctx context.Context, conn any, table, columns []string, next func() (row []any, ok bool, err error)) (n int64, handled bool, err error)

// Pgx is set by package dbm/dbmpgx's init; nil when the program does not
// import it. It is written only during package initialisation.
var Pgx Func
