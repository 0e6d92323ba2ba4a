package dbm

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// JSON holds a Go value stored as JSON in a column: PostgreSQL json or
// jsonb, MySQL/MariaDB JSON, SQLite TEXT. As a destination it decodes the
// column with [encoding/json] into V; as a statement argument it encodes V.
// It works the same with every driver (lib/pq, pgx, MySQL, SQLite):
//
//	type Account struct {
//		ID    int64               `db:"id"`
//		Prefs dbm.JSON[Prefs]     `db:"prefs"`
//		Tags  *dbm.JSON[[]string] `db:"tags"` // nil for NULL
//	}
//	_, err := m.Exec(ctx, "UPDATE accounts SET prefs = ? WHERE id = ?", dbm.JSON[Prefs]{V: p}, id)
//
// NULL: scanning NULL into a JSON sets V to its zero value; to tell NULL
// apart, use a *JSON[T] field, which stays nil for NULL (or JSON[*T]). A
// JSON argument is never NULL: V is encoded even when it is a nil pointer,
// map or slice (as the JSON text null); pass a nil *JSON[T] (or nil) to
// write NULL. The JSON text null scans as encoding/json decodes it (V's
// zero value for pointers, maps and slices).
//
// For raw JSON text, use json.RawMessage or []byte: they scan on every
// driver too (SQLite's TEXT included). To bind raw JSON text, pass it as a
// string (lib/pq sends a []byte as bytea), or as JSON[json.RawMessage].
type JSON[T any] struct {
	V T
}

// Scan implements [database/sql.Scanner]: it decodes JSON text, which
// drivers deliver as []byte or string, into V. SQLite may deliver a JSON
// number or boolean held in a column of numeric affinity as an int64,
// float64 or bool; those are decoded from their text. A value that is not
// valid JSON for V is an error that wraps encoding/json's.
func (j *JSON[T]) Scan(src any) error {
	var zero T
	j.V = zero
	var text []byte
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		text = v
	case string:
		text = []byte(v)
	case int64:
		text = strconv.AppendInt(nil, v, 10)
	case float64:
		text = strconv.AppendFloat(nil, v, 'g', -1, 64)
	case bool:
		text = strconv.AppendBool(nil, v)
	default:
		return fmt.Errorf("dbm.JSON[%s]: cannot decode a %T; want JSON text", reflect.TypeFor[T](), src)
	}
	if err := json.Unmarshal(text, &j.V); err != nil {
		return fmt.Errorf("dbm.JSON[%s]: %w", reflect.TypeFor[T](), err)
	}
	return nil
}

// Value implements [database/sql/driver.Valuer]: V encoded as JSON text, a
// string (which every driver sends as text, so that PostgreSQL parses it as
// json or jsonb). An error from encoding/json is returned as is.
func (j JSON[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(j.V)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
