package dbm

import (
	"context"
	"database/sql"
)

// ExecuteQuery runs query with args and stores every row in dest, which
// must point to a slice:
//
//   - *[]T or *[]*T for a struct T: each column goes to the field whose `db`
//     tag, or else lower-cased name, matches it; embedded structs are
//     searched too. A column with no field is a [*ScanError] matching
//     [ErrUnknownColumn], unless the call ignores unknown columns
//     ([IgnoreUnknownColumns], [WithIgnoreUnknownColumns]). A field that
//     is a pointer to a struct (columns "author.id", "author.name", ...)
//     stays nil when all its columns are NULL, as after a LEFT JOIN.
//     Two columns that would go to the same field (SELECT o.id, u.id into
//     struct{ Order; User }) are a [*ScanError] matching
//     [ErrDuplicateColumn]: alias one ("user.id") onto a struct embedded
//     with a prefix tag (`db:"user"`).
//   - *[]map[string]any: one map per row, column name to value; a name
//     twice in the result is an [ErrDuplicateColumn] error.
//   - *[]V for a scalar V (string, int64, time.Time, a sql.Scanner, ...):
//     the query must return one column.
//
// *dest is replaced, reusing its capacity; with no rows it is empty, not nil.
// On error it is empty. A NULL for a field that cannot hold one (use a
// pointer or a sql.Null type) is a [*ScanError] matching [ErrNullValue].
//
// Write placeholders in the driver's style; '?' is rebound to $1, $2, ...
// for PostgreSQL drivers. A trailing semicolon is allowed.
func (m *Manager) ExecuteQuery(ctx context.Context, dest any, query string, args ...any) error {
	if c := m.routed(); c != nil {
		return c.executeQuery(ctx, dest, query, args)
	}
	return m.session().executeQuery(ctx, dest, query, args)
}

// Get runs query and stores its first row in dest, a pointer to a struct, a
// scalar or a map[string]any (see [Manager.ExecuteQuery] for the mapping).
// No row is an error matching both [ErrNotFound] and [sql.ErrNoRows]. When
// a read is retried, dest keeps nothing of an attempt that failed.
func (m *Manager) Get(ctx context.Context, dest any, query string, args ...any) error {
	if c := m.routed(); c != nil {
		return c.get(ctx, dest, query, args)
	}
	return m.session().get(ctx, dest, query, args)
}

// Exec runs a statement that returns no rows, such as INSERT, UPDATE or DDL.
func (m *Manager) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c := m.routed(); c != nil {
		return c.exec(ctx, query, args)
	}
	return m.session().exec(ctx, query, args)
}

// Query runs query and returns its rows for the caller to iterate. The
// caller must close them; prefer [Manager.ExecuteQuery], [Select] or [Iter],
// which close for you.
func (m *Manager) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if c := m.routed(); c != nil {
		return c.query(ctx, query, args)
	}
	return m.session().query(ctx, query, args)
}

// Rebind returns query exactly as the manager sends it to the driver:
// trailing semicolons and white space removed and, for drivers that number
// their placeholders ("postgres", "pgx"), each '?' rewritten to the next $n,
// except inside string literals, quoted identifiers, comments and
// dollar-quoted bodies, and not at all when query already has a $n (see
// docs/querying.md#placeholders). Use it for statements run through
// [Manager.DB] or another library, so that they read the same as the
// manager's: sqlx's m.DB().Rebind rewrites every '?', those in strings and
// comments too, and keeps the semicolon. A nil Manager returns query
// unchanged.
func (m *Manager) Rebind(query string) string {
	if m == nil {
		return query
	}
	return sentText(query, m.numbered)
}

// session is the manager's; a nil manager's has no manager, which every
// call reports (see [Manager.check]).
func (m *Manager) session() session {
	if m == nil {
		return session{}
	}
	return session{m: m, ex: m.db.DB}
}
