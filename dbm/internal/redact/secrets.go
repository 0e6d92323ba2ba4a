// Package redact keeps secrets out of what the manager shows: the forms a
// password takes in text (Secrets), the scrubbing of driver errors and
// statements that contain one, and the redaction of DSNs in every driver's
// form. It knows the drivers by name only, and imports none of them.
package redact

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// The password is known from Config.Password, secret Params and the DSN;
// everything the manager prints or returns is checked against it (and its
// encoded forms) on the way out.

// The driver names, as dbm's DriverPostgres and the others spell them (a
// dbm test checks that they agree).
const (
	DriverPostgres = "postgres"
	DriverPgx      = "pgx"
	DriverMySQL    = "mysql"
	DriverSQLite   = "sqlite"
)

// Redacted replaces a secret in a DSN or in a Config's text.
const Redacted = "[redacted]"

// MaxStatementLen bounds the statement text kept in errors and logs.
const MaxStatementLen = 200

// secretParams are the driver parameters that carry a secret, lower-cased:
// lib/pq and pgx (password, sslpassword), go-sql-driver/mysql (passwd via
// DSN, password), modernc.org/sqlite (_auth_pass) and common token names.
var secretParams = []string{"password", "passwd", "pass", "pwd", "sslpassword", "_auth_pass", "token", "auth_token", "access_token", "secret", "client_secret"}

// IsSecretParam reports whether a driver parameter carries a secret.
func IsSecretParam(k string) bool {
	return slices.Contains(secretParams, strings.ToLower(strings.TrimSpace(k)))
}

// Secrets holds the forms a password can take in text: as written,
// percent-encoded as in a URL's user info, path or query, and, for a
// password with white space or quotes, its longer pieces (drivers that
// redact their own messages sometimes leave a piece behind).
type Secrets []string

// NewSecrets returns the forms of the given passwords; empty ones are
// skipped.
func NewSecrets(passwords ...string) Secrets {
	var s Secrets
	add := func(f string) {
		if f != "" && !slices.Contains(s, f) {
			s = append(s, f)
		}
	}
	for _, p := range passwords {
		if p == "" {
			continue
		}
		add(p)
		add(url.QueryEscape(p))
		add(url.PathEscape(p))
		add(url.UserPassword("", p).String()[1:])
		for _, piece := range strings.FieldsFunc(p, func(r rune) bool { return r == ' ' || r == '\t' || r == '\'' || r == '"' || r == '\\' }) {
			if len(piece) >= 4 && piece != p {
				add(piece)
			}
		}
	}
	return s
}

// In reports whether text contains a secret as a token of its own: an
// occurrence glued to letters or digits on a side where the secret itself
// starts or ends with one ("test" inside "latest") does not count, so that a
// short password does not make every message suspect.
func (s Secrets) In(text string) bool {
	for _, f := range s {
		for i := 0; ; {
			k := strings.Index(text[i:], f)
			if k < 0 {
				break
			}
			start, end := i+k, i+k+len(f)
			glued := start > 0 && isAlnum(text[start-1]) && isAlnum(f[0]) ||
				end < len(text) && isAlnum(text[end]) && isAlnum(f[len(f)-1])
			if !glued {
				return true
			}
			i = start + 1
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Scrub returns err, or, when its text contains the password, an error that
// withholds that text. Replacing the password inside the driver's text
// would garble it and tell which word it is; and the original must not stay
// reachable through Unwrap either. Callers classify err before scrubbing.
func (s Secrets) Scrub(err error) error {
	if err == nil || len(s) == 0 || !s.In(err.Error()) {
		return err
	}
	return ErrWithheld
}

// ScrubConnect is Scrub for errors from connecting, which some drivers fill
// with their whole configuration (pgx's *pgconn.ConnectError holds the
// password in a field, out of reach of any text check). Only the text is
// kept, plus the server's own error when there is one (it carries the
// SQLSTATE or error number and never the configuration).
func (s Secrets) ScrubConnect(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if len(s) > 0 && s.In(text) {
		text = ErrWithheld.Error()
	}
	if server := serverError(err); server != nil && !(len(s) > 0 && s.In(server.Error())) {
		return &connectError{text: text, server: server}
	}
	return errors.New(text)
}

// serverError finds the error the database server sent, if any, in err's
// chain: one with a SQLSTATE, a MySQL error number or an SQLite code.
func serverError(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(interface{ SQLState() string }); ok {
			return e
		}
		if t := reflect.TypeOf(e); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
			switch t.Elem().PkgPath() {
			case "github.com/go-sql-driver/mysql", "modernc.org/sqlite":
				return e
			}
		}
	}
	return nil
}

// connectError is the text of a failed connection plus the server's error,
// which stays reachable with errors.As.
type connectError struct {
	text   string
	server error
}

func (e *connectError) Error() string { return e.text }
func (e *connectError) Unwrap() error { return e.server }

// Statement returns q as errors, logs, traces and leak reports show it:
// shortened, or withheld when it contains the password anywhere. The check
// comes first, so that a cut through the password cannot show a piece of it.
func (s Secrets) Statement(q string) string {
	q = s.Text(q)
	if q == "" {
		return ""
	}
	return sqltext.Shorten(q, MaxStatementLen)
}

// Text returns text, or a placeholder when it contains the password.
func (s Secrets) Text(text string) string {
	if len(s) > 0 && s.In(text) {
		return "[withheld: contained the password]"
	}
	return text
}

// ErrWithheld replaces a driver error whose text holds the password.
var ErrWithheld = errors.New("driver message withheld: it contained the configured password")
