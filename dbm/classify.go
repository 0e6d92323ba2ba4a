package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// classify derives the class and code of a raw driver or Go error. ctx is the
// caller's context (nil when unknown); it tells a caller's deadline from a
// cancellation.
func classify(ctx context.Context, err error) (Class, string) {
	if class, ok := declaredClass(err); ok {
		return class, ""
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ClassNotFound, ""
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		code := st.SQLState()
		if code == "08P01" && bindCountMismatch(err) {
			// The server refused the Bind: nothing ran, and the connection
			// is fine. lib/pq with binary_parameters=yes (Config.Pooler)
			// leaves the count to the server instead of checking it.
			return ClassInvalidArgument, code
		}
		return classifySQLState(ctx, code), code
	}
	if class, code, ok := classifyDriverCode(ctx, err); ok {
		return class, code
	}
	if ctx != nil {
		switch ctx.Err() {
		case context.DeadlineExceeded:
			return ClassTimeout, ""
		case context.Canceled:
			return ClassCanceled, ""
		}
	}
	// A refused certificate (lib/pq returns it bare, pgx inside a
	// net.Error), and a connection that ConnectTimeout cut short: the
	// server is not reachable, whatever the net.Error says.
	if isCertificateFailure(err) || dialTimedOut(err) {
		return ClassConnection, ""
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout, ""
	case errors.Is(err, context.Canceled):
		return ClassCanceled, ""
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn), isMySQLInvalidConn(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return ClassConnection, ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Op == "parse" { // a malformed DSN; *url.Error is also a net.Error
		return ClassConfig, ""
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ClassTimeout, ""
		}
		return ClassConnection, ""
	}
	// pgx, found by behaviour: a timeout (what pgconn.Timeout reports), or
	// an error that pgx says happened before anything was sent.
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return ClassTimeout, ""
	}
	if safeToRetry(err) {
		return ClassConnection, ""
	}
	if isArgumentMistake(err) {
		return ClassInvalidArgument, ""
	}
	return ClassUnknown, ""
}

// ClassDeclarer is implemented by an error that knows its own [Class]: one
// made by a test double or a wrapping driver rather than by a server, such
// as dbmtest's mismatch error (a call the mock did not expect). The first
// error in the chain that implements it decides the class, before any code
// or text is looked at, and a failed COMMIT with such an error is the
// answer it declares, never [ErrCommitUnknown] unless it declares
// [ClassCommitUnknown] itself (or [ClassConnection], which at COMMIT means
// the reply was lost). [errors.As] still finds the error itself.
type ClassDeclarer interface {
	error
	DBMClass() Class
}

// declaredClass returns the class an error in err's chain declares; see
// [ClassDeclarer].
func declaredClass(err error) (Class, bool) {
	var d ClassDeclarer
	if errors.As(err, &d) {
		return d.DBMClass(), true
	}
	return ClassUnknown, false
}

// declared reports whether an error in err's chain declares its class.
func declared(err error) bool {
	_, ok := declaredClass(err)
	return ok
}

// argumentMistakes are the texts with which database/sql and the drivers
// report a call the caller got wrong. They carry no type or code to match,
// so the text is all there is; each is checked against the start and the
// middle of one error of the chain. Only errors that nothing else
// classified get here: a server's error (with a code) never does.
var argumentMistakes = []struct{ prefix, middle string }{
	{"sql: expected ", " arguments, got "},                  // database/sql: argument count
	{"sql: converting argument ", ""},                       // database/sql: an argument it cannot send
	{"sql: expected ", " destination arguments in Scan"},    // database/sql: Scan's count
	{"sql: Scan called without calling Next", ""},           // database/sql
	{"destination not a pointer", ""},                       // database/sql: Scan
	{"pq: got ", " parameters but the statement requires "}, // lib/pq
	{"expected ", " arguments, got "},                       // pgx: argument count (a query)
	{"mismatched param and argument count", ""},             // pgx: argument count (Exec)
	{"failed to encode args[", ""},                          // pgx: an argument it cannot send
	{"missing argument with index ", ""},                    // modernc.org/sqlite
	{"missing named argument ", ""},                         // modernc.org/sqlite
	{"argument count mismatch (got: ", ""},                  // go-sql-driver/mysql
}

// isArgumentMistake reports whether err is database/sql's or a driver's
// report of a call made wrongly: see argumentMistakes.
func isArgumentMistake(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		text := e.Error()
		for _, m := range argumentMistakes {
			if rest, ok := strings.CutPrefix(text, m.prefix); ok && strings.Contains(rest, m.middle) {
				return true
			}
		}
	}
	return false
}

// bindCountMismatch reports PostgreSQL's protocol error for a call with the
// wrong number of arguments: "bind message supplies 1 parameters, but
// prepared statement "" requires 2".
func bindCountMismatch(err error) bool {
	text := err.Error()
	i := strings.Index(text, "bind message supplies ")
	return i >= 0 && strings.Contains(text[i:], " parameters, but prepared statement ")
}

// classifySQLState maps a PostgreSQL SQLSTATE (lib/pq and pgx both expose
// SQLState()) to a class.
func classifySQLState(ctx context.Context, code string) Class {
	switch code {
	case "23505", "23P01":
		return ClassUniqueViolation
	case "23503":
		return ClassForeignKeyViolation
	case "23502":
		return ClassNotNullViolation
	case "23514":
		return ClassCheckViolation
	case "40001":
		return ClassSerialization
	case "40P01":
		return ClassDeadlock
	case "55P03":
		return ClassLockTimeout
	case "57014":
		if ctx != nil && ctx.Err() == context.Canceled {
			return ClassCanceled
		}
		return ClassTimeout
	case "53300":
		return ClassTooManyConnections
	case "57P01", "57P02", "57P03":
		return ClassConnection
	case "25006":
		return ClassReadOnly
	case "42601":
		return ClassSyntax
	case "42P01", "42703", "42883":
		return ClassUndefinedObject
	case "42501":
		return ClassPermission
	}
	switch {
	case strings.HasPrefix(code, "08"):
		return ClassConnection
	case strings.HasPrefix(code, "28"):
		return ClassPermission
	case strings.HasPrefix(code, "22"):
		return ClassDataException
	}
	return ClassUnknown
}

// classifyDriverCode finds a MySQL/MariaDB error number or an SQLite result
// code in err's chain without importing either driver: by the error type's
// package path and its exported shape (MySQLError.Number, sqlite's Code()).
func classifyDriverCode(ctx context.Context, err error) (Class, string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			continue
		}
		switch t.Elem().PkgPath() {
		case "github.com/go-sql-driver/mysql":
			if f := reflect.ValueOf(e).Elem().FieldByName("Number"); f.IsValid() && f.CanUint() {
				n := f.Uint()
				return classifyMySQL(ctx, n), strconv.FormatUint(n, 10), true
			}
		case "modernc.org/sqlite":
			if c, ok := e.(interface{ Code() int }); ok {
				code := c.Code()
				return classifySQLite(code, e.Error()), strconv.Itoa(code), true
			}
		}
	}
	return ClassUnknown, "", false
}

// classifyMySQL maps a MySQL/MariaDB server error number to a class.
func classifyMySQL(ctx context.Context, n uint64) Class {
	switch n {
	case 1062, 1586:
		return ClassUniqueViolation
	case 1451, 1452, 1216, 1217:
		return ClassForeignKeyViolation
	case 1048, 1364:
		return ClassNotNullViolation
	case 3819, 4025:
		return ClassCheckViolation
	case 1213:
		return ClassDeadlock
	case 1205, 3572:
		return ClassLockTimeout
	case 1040, 1203:
		return ClassTooManyConnections
	case 1290, 1836, 1792:
		return ClassReadOnly
	case 1064, 1149:
		return ClassSyntax
	case 1146, 1054, 1305, 1049:
		return ClassUndefinedObject
	case 1044, 1045, 1142, 1143, 1227:
		return ClassPermission
	case 1264, 1265, 1292, 1365, 1366, 1406, 1690:
		return ClassDataException
	case 1317, 3024, 1969:
		if n == 1317 && ctx != nil && ctx.Err() == context.Canceled {
			return ClassCanceled
		}
		return ClassTimeout
	}
	return ClassUnknown
}

// classifySQLite maps an SQLite (extended) result code to a class. SQLite
// reports syntax errors and missing tables with the generic code 1
// (SQLITE_ERROR); only its message tells them apart.
func classifySQLite(code int, msg string) Class {
	switch code {
	case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
		return ClassUniqueViolation
	case 787: // SQLITE_CONSTRAINT_FOREIGNKEY
		return ClassForeignKeyViolation
	case 1299: // SQLITE_CONSTRAINT_NOTNULL
		return ClassNotNullViolation
	case 275: // SQLITE_CONSTRAINT_CHECK
		return ClassCheckViolation
	}
	switch code & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return ClassLockTimeout
	case 8: // SQLITE_READONLY
		return ClassReadOnly
	case 23: // SQLITE_AUTH
		return ClassPermission
	case 9: // SQLITE_INTERRUPT
		return ClassCanceled
	case 1:
		switch {
		case strings.Contains(msg, "syntax error"), strings.Contains(msg, "incomplete input"):
			return ClassSyntax
		case strings.Contains(msg, "no such table"), strings.Contains(msg, "no such column"), strings.Contains(msg, "no such function"):
			return ClassUndefinedObject
		}
	}
	return ClassUnknown
}

// isMySQLInvalidConn recognises go-sql-driver/mysql's ErrInvalidConn, a
// plain errors.New value that only its text identifies without importing
// the driver.
func isMySQLInvalidConn(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "invalid connection" {
			return true
		}
	}
	return false
}
