package dbm

import (
	"context"
	"strconv"
	"strings"
)

// Savepoint marks the current point of the transaction under name, so that
// [Tx.RollbackTo] can undo what follows it without ending the transaction.
// name is an identifier (a letter or underscore, then letters, digits or
// underscores, at most 63 bytes); anything else is an error matching
// [ErrInvalidArgument] and nothing is sent. A savepoint set again under the
// same name hides the earlier one until it is released (PostgreSQL, SQLite)
// or replaces it (MySQL/MariaDB).
//
// Savepoints are explicit on purpose; see docs/querying.md#savepoints for
// why a nested WithTx does not make one.
func (tx *Tx) Savepoint(ctx context.Context, name string) error {
	return tx.savepoint(ctx, "Savepoint", "SAVEPOINT ", name)
}

// RollbackTo undoes what the transaction did since [Tx.Savepoint] marked
// name; the savepoint stays, and the transaction goes on. On PostgreSQL it
// is the way to go on after a failed statement (which aborts the whole
// transaction otherwise).
func (tx *Tx) RollbackTo(ctx context.Context, name string) error {
	return tx.savepoint(ctx, "RollbackTo", "ROLLBACK TO SAVEPOINT ", name)
}

// Release forgets the savepoint name (and those set after it), keeping what
// was done since: the work becomes part of the enclosing transaction, and is
// committed or rolled back with it.
func (tx *Tx) Release(ctx context.Context, name string) error {
	return tx.savepoint(ctx, "Release", "RELEASE SAVEPOINT ", name)
}

func (tx *Tx) savepoint(ctx context.Context, fn, verb, name string) error {
	if err := tx.usable(fn); err != nil {
		return err
	}
	if err := checkIdent(fn, "name", name); err != nil {
		return err
	}
	_, err := tx.s.exec(ctx, verb+quoteIdent(tx.s.m.DriverName(), name), nil)
	return err
}

// maxIdentLen is PostgreSQL's limit on an identifier (NAMEDATALEN-1);
// MySQL's is 64 and SQLite has none.
const maxIdentLen = 63

// checkIdent accepts a plain SQL identifier: a letter or underscore, then
// letters, digits or underscores, at most maxIdentLen bytes.
func checkIdent(fn, arg, name string) error {
	if name == "" {
		return &ArgumentError{Func: fn, Arg: arg, Reason: "empty name"}
	}
	if len(name) > maxIdentLen {
		return &ArgumentError{Func: fn, Arg: arg, Reason: "name longer than 63 bytes"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return &ArgumentError{Func: fn, Arg: arg, Reason: "name " + quoteShort(name) +
				" is not an identifier (a letter or _, then letters, digits or _)"}
		}
	}
	return nil
}

// quoteIdent quotes one identifier in the driver's SQL: backquotes for
// MySQL/MariaDB, double quotes otherwise, the quote character doubled
// inside.
func quoteIdent(driver, name string) string {
	q := `"`
	if driver == DriverMySQL {
		q = "`"
	}
	return q + strings.ReplaceAll(name, q, q+q) + q
}

// quoteShort quotes s for an error message, shortened.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
