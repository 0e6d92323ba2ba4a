package dbm

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/dbmanager-go/dbmanager/dbm/internal/scan"
)

// Sentinel errors. An error the manager returns matches the sentinel of its
// [Class] with [errors.Is] (see [Classify]; errors of [ClassUnknown] match
// none) and keeps the driver's own error reachable with [errors.As].
var (
	// ErrNotFound: a query for one row ([Manager.Get], [One]) found none. It
	// also matches [sql.ErrNoRows].
	ErrNotFound = errors.New("dbm: not found")
	// ErrUniqueViolation: a unique or primary key (or exclusion) constraint.
	ErrUniqueViolation = errors.New("dbm: unique violation")
	// ErrForeignKeyViolation: a foreign key constraint.
	ErrForeignKeyViolation = errors.New("dbm: foreign key violation")
	// ErrNotNullViolation: NULL written to a NOT NULL column.
	ErrNotNullViolation = errors.New("dbm: not null violation")
	// ErrCheckViolation: a CHECK constraint.
	ErrCheckViolation = errors.New("dbm: check violation")
	// ErrSerialization: the server aborted a transaction to keep it
	// serializable; running it again may succeed.
	ErrSerialization = errors.New("dbm: serialization failure")
	// ErrDeadlock: the server broke a deadlock by aborting this transaction.
	ErrDeadlock = errors.New("dbm: deadlock")
	// ErrLockTimeout: a lock could not be taken in time (or SQLite was busy).
	ErrLockTimeout = errors.New("dbm: lock timeout")
	// ErrConnection: the connection could not be made or was lost. Errors from
	// [New] that fail to reach the server always match it.
	ErrConnection = errors.New("dbm: connection error")
	// ErrTooManyConnections: the server refused a new connection because it
	// has too many.
	ErrTooManyConnections = errors.New("dbm: too many connections")
	// ErrPoolTimeout: waiting for a free connection from the pool took too
	// long.
	ErrPoolTimeout = errors.New("dbm: pool acquire timeout")
	// ErrTimeout: the caller's deadline passed or the server's statement
	// timeout fired.
	ErrTimeout = errors.New("dbm: timeout")
	// ErrCanceled: the caller's context was canceled or the statement was
	// canceled on the server.
	ErrCanceled = errors.New("dbm: canceled")
	// ErrSyntax: the statement is not valid SQL for the server.
	ErrSyntax = errors.New("dbm: syntax error")
	// ErrUndefinedObject: a table, column or function does not exist.
	ErrUndefinedObject = errors.New("dbm: undefined object")
	// ErrPermission: authentication failed or the role lacks a privilege.
	ErrPermission = errors.New("dbm: permission denied")
	// ErrDataException: a value is invalid for its type or operation
	// (division by zero, out of range, bad text representation, ...).
	ErrDataException = errors.New("dbm: data exception")
	// ErrReadOnly: a write was sent to a read-only server or transaction.
	ErrReadOnly = errors.New("dbm: read-only")
	// ErrCommitUnknown: the connection was lost after COMMIT was sent, so
	// whether the transaction committed is unknown.
	ErrCommitUnknown = errors.New("dbm: commit outcome unknown")
	// ErrOutcomeUnknown: the connection was lost after a write (or COMMIT)
	// was sent, so whether it took effect is unknown; it was not retried.
	// Such errors also match [ErrConnection] (or [ErrCommitUnknown]); see
	// [Idempotent] and docs/errors-and-retries.md.
	ErrOutcomeUnknown = errors.New("dbm: outcome unknown")
	// ErrClosed: the [Manager] (or the [Tx] or [Rows]) was already closed.
	ErrClosed = errors.New("dbm: closed")
	// ErrLeaked: [Manager.Close] found rows or transactions still open.
	ErrLeaked = errors.New("dbm: leaked resources")
	// ErrConfig: a configuration value is missing or invalid; see
	// [ConfigError].
	ErrConfig = errors.New("dbm: invalid configuration")
	// ErrInvalidArgument: a call was made with an argument it cannot use,
	// such as a nil or non-pointer destination, or on a nil receiver; see
	// [ArgumentError]. Mistakes that only the driver or database/sql can
	// see (the wrong number of statement arguments, an argument of a type
	// the driver cannot send, Scan before Next or into the wrong number of
	// destinations) are an [*Error] of [ClassInvalidArgument] that matches
	// it too.
	ErrInvalidArgument = errors.New("dbm: invalid argument")
	// ErrUnknownColumn: a result column has no destination field; see
	// [ScanError].
	ErrUnknownColumn = scan.ErrUnknownColumn // "dbm: column has no destination"
	// ErrNullValue: a NULL arrived for a destination that cannot hold NULL;
	// see [ScanError].
	ErrNullValue = scan.ErrNullValue // "dbm: NULL into non-nullable destination"
	// ErrDuplicateColumn: two result columns would be stored in the same
	// place (the same field, or the same key of a map[string]any), so the
	// second would silently replace the first; see [ScanError].
	ErrDuplicateColumn = scan.ErrDuplicateColumn // "dbm: two columns for one destination"
)

// Class is what kind of failure an error is, independent of the driver.
type Class uint8

// The classes, one per sentinel error.
const (
	ClassUnknown Class = iota
	ClassNotFound
	ClassUniqueViolation
	ClassForeignKeyViolation
	ClassNotNullViolation
	ClassCheckViolation
	ClassSerialization
	ClassDeadlock
	ClassLockTimeout
	ClassConnection
	ClassTooManyConnections
	ClassPoolTimeout
	ClassTimeout
	ClassCanceled
	ClassSyntax
	ClassUndefinedObject
	ClassPermission
	ClassDataException
	ClassReadOnly
	ClassCommitUnknown
	ClassClosed
	ClassLeaked
	ClassConfig
	ClassInvalidArgument
	ClassScan
	numClasses
)

var classInfo = [numClasses]struct {
	name     string
	sentinel error
}{
	ClassUnknown:             {"unknown", nil},
	ClassNotFound:            {"not_found", ErrNotFound},
	ClassUniqueViolation:     {"unique_violation", ErrUniqueViolation},
	ClassForeignKeyViolation: {"foreign_key_violation", ErrForeignKeyViolation},
	ClassNotNullViolation:    {"not_null_violation", ErrNotNullViolation},
	ClassCheckViolation:      {"check_violation", ErrCheckViolation},
	ClassSerialization:       {"serialization", ErrSerialization},
	ClassDeadlock:            {"deadlock", ErrDeadlock},
	ClassLockTimeout:         {"lock_timeout", ErrLockTimeout},
	ClassConnection:          {"connection", ErrConnection},
	ClassTooManyConnections:  {"too_many_connections", ErrTooManyConnections},
	ClassPoolTimeout:         {"pool_timeout", ErrPoolTimeout},
	ClassTimeout:             {"timeout", ErrTimeout},
	ClassCanceled:            {"canceled", ErrCanceled},
	ClassSyntax:              {"syntax", ErrSyntax},
	ClassUndefinedObject:     {"undefined_object", ErrUndefinedObject},
	ClassPermission:          {"permission", ErrPermission},
	ClassDataException:       {"data_exception", ErrDataException},
	ClassReadOnly:            {"read_only", ErrReadOnly},
	ClassCommitUnknown:       {"commit_unknown", ErrCommitUnknown},
	ClassClosed:              {"closed", ErrClosed},
	ClassLeaked:              {"leaked", ErrLeaked},
	ClassConfig:              {"config", ErrConfig},
	ClassInvalidArgument:     {"invalid_argument", ErrInvalidArgument},
	ClassScan:                {"scan", nil},
}

// String returns the class's stable snake_case name, suitable as a metric
// label ("unique_violation", "connection", ...).
func (c Class) String() string {
	if c < numClasses {
		return classInfo[c].name
	}
	return "unknown"
}

// Sentinel returns the sentinel error the class matches, or nil for
// [ClassUnknown] and [ClassScan] (scan errors match [ErrUnknownColumn],
// [ErrDuplicateColumn] or [ErrNullValue], or carry a conversion error).
func (c Class) Sentinel() error {
	if c < numClasses {
		return classInfo[c].sentinel
	}
	return nil
}

// Error is the error the manager returns for a failed database operation. It
// wraps the driver's error, so [errors.As] still finds *pq.Error and the
// like, and matches its class's sentinel with [errors.Is].
type Error struct {
	Class Class  // what kind of failure
	Code  string // SQLSTATE or driver error number, when known
	Op    string // "query", "exec", "begin", "commit", "rollback", "connect", "ping", "scan", "close"
	Query string // the statement, shortened; never argument values
	Err   error  // the underlying error; withheld when its text held the password
}

// Error returns "dbm: <op>: <class>: <driver text>" followed by the
// statement. A driver text or statement that contained the configured
// password was withheld when the error was made.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dbm: ")
	b.WriteString(e.Op)
	if e.Class != ClassUnknown {
		b.WriteString(": ")
		b.WriteString(e.Class.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		cause := e.Err.Error()
		if e.Class != ClassUnknown {
			cause = dropRepeat(cause, e.Class.String()+": ")
		}
		b.WriteString(cause)
	}
	if e.Query != "" {
		b.WriteString(" [statement: ")
		b.WriteString(e.Query)
		b.WriteString("]")
	}
	return b.String()
}

// dropRepeat removes prefix (the class, "timeout: ") where it starts the
// cause's text or one of its ": "-separated parts: pgx starts its timeout
// errors with "timeout: ", and the message has said so already.
func dropRepeat(cause, prefix string) string {
	cause = strings.TrimPrefix(cause, prefix)
	return strings.ReplaceAll(cause, ": "+prefix, ": ")
}

// Unwrap returns the driver's error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class. Errors from a
// failed connect also match [ErrConnection], whatever their class (except a
// configuration the driver rejected: retrying cannot fix it), and so does
// [ErrCommitUnknown] (the connection was lost during COMMIT), which also
// matches [ErrOutcomeUnknown].
func (e *Error) Is(target error) bool {
	if s := e.Class.Sentinel(); s != nil && s == target {
		return true
	}
	if target == ErrOutcomeUnknown && e.Class == ClassCommitUnknown {
		return true
	}
	return target == ErrConnection && (e.Op == "connect" && e.Class != ClassConfig || e.Class == ClassCommitUnknown)
}

// Classify returns the class of err: the class an [*Error] carries, or the
// class derived from a driver or Go error. It returns [ClassUnknown] for nil
// and for errors it does not recognise.
func Classify(err error) Class {
	if err == nil {
		return ClassUnknown
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ClassConfig
	}
	var ae *ArgumentError
	if errors.As(err, &ae) {
		return ClassInvalidArgument
	}
	var se *ScanError
	if errors.As(err, &se) {
		return ClassScan
	}
	c, _ := classify(context.Background(), err)
	return c
}

// IsRetryable reports whether running the failed operation again may
// succeed: connection loss, too many connections, serialization failures,
// deadlocks, lock timeouts and pool timeouts. It says nothing about whether
// the operation already took effect; see docs/querying.md.
func IsRetryable(err error) bool {
	switch Classify(err) {
	case ClassConnection, ClassTooManyConnections, ClassSerialization,
		ClassDeadlock, ClassLockTimeout, ClassPoolTimeout:
		return true
	}
	return false
}

// ArgumentError reports an argument a call cannot use: a nil, non-pointer or
// wrongly typed destination, or a nil context. It matches
// [ErrInvalidArgument].
type ArgumentError struct {
	Func   string // the call, e.g. "ExecuteQuery"
	Arg    string // the argument, e.g. "dest"
	Reason string // what is wrong with it
}

// Error returns "dbm: <Func>: invalid <Arg>: <Reason>".
func (e *ArgumentError) Error() string {
	return "dbm: " + e.Func + ": invalid " + e.Arg + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidArgument].
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// ScanError reports a result column that could not be stored: it has no
// destination field ([ErrUnknownColumn]), an earlier column goes to the same
// destination ([ErrDuplicateColumn]), it is NULL and the destination cannot
// hold NULL ([ErrNullValue]), or the driver's value does not convert (Err
// holds database/sql's conversion error).
type ScanError struct {
	Column string // the result column's name
	Index  int    // the column's position, from 0
	Dest   string // the destination: a Go type, or Type.Field
	Err    error  // ErrUnknownColumn, ErrDuplicateColumn, ErrNullValue or the conversion error
	// Other is, for ErrDuplicateColumn, the position (from 0) of the
	// earlier column that goes to Dest too.
	Other int
	// unexported is, for ErrUnknownColumn, the unexported field the column
	// would have gone to: reflection cannot set it.
	unexported string
	// otherColumn is, for ErrDuplicateColumn, the name of column Other.
	otherColumn string
}

// Error names the column and the destination, and says how to fix the
// mapping.
func (e *ScanError) Error() string {
	switch e.Err {
	case ErrUnknownColumn:
		if e.unexported != "" {
			return "dbm: scan: column " + quote(e.Column) + " has no destination field in " + e.Dest +
				": field " + e.unexported + " is unexported (export it, with a `db:\"" + e.Column + "\"` tag if needed)"
		}
		return "dbm: scan: column " + quote(e.Column) + " has no destination field in " + e.Dest +
			" (add a `db:\"" + e.Column + "\"` tag, select fewer columns, or alias the column)"
	case ErrDuplicateColumn:
		return e.duplicate()
	case ErrNullValue:
		return "dbm: scan: column " + quote(e.Column) + " is NULL but " + e.Dest +
			" cannot hold NULL (use a pointer or a sql.Null type)"
	}
	return "dbm: scan: column " + quote(e.Column) + " into " + e.Dest + ": " + e.Err.Error()
}

// duplicate explains ErrDuplicateColumn. Positions count from 1 here, as
// in SQL's ORDER BY 1.
func (e *ScanError) duplicate() string {
	at := " (positions " + strconv.Itoa(e.Other+1) + " and " + strconv.Itoa(e.Index+1) + ")"
	if e.Dest == "map[string]any" {
		return "dbm: scan: column " + quote(e.Column) + " appears twice in the result" + at +
			" and a map[string]any holds one value per name: alias one of them (AS \"user_id\")"
	}
	what := "column " + quote(e.Column) + " appears twice in the result" + at + " and both would go to "
	if e.otherColumn != e.Column {
		what = "columns " + quote(e.otherColumn) + " and " + quote(e.Column) + at + " would both go to "
	}
	return "dbm: scan: " + what + e.Dest + ": alias one of them and give it its own field, e.g. " +
		"u.id AS \"user.id\" with the embedded struct tagged `db:\"user\"` (see docs/querying.md)"
}

// Unwrap returns the cause: [ErrUnknownColumn], [ErrDuplicateColumn],
// [ErrNullValue] or the conversion error.
func (e *ScanError) Unwrap() error { return e.Err }

func quote(s string) string { return `"` + s + `"` }
