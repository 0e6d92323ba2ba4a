// Package nodriver holds tests of package dbm in a program that imports no
// driver but dbm itself: what a user who forgot the driver's import sees.
// Its tests must never import pgx, go-sql-driver/mysql or modernc.org/sqlite.
package nodriver
