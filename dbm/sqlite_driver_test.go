package dbm_test

// The SQLite driver is imported by the tests and the quickstart, never by
// package dbm itself.
import _ "modernc.org/sqlite"
