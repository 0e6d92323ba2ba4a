package dbm

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

// This file keeps secrets out of output. The password is known from
// Config.Password, secret Params and the DSN; everything the manager prints
// or returns is checked against it (and its encoded forms) on the way out.

// secretParams are the driver parameters that carry a secret, lower-cased:
// lib/pq and pgx (password, sslpassword), go-sql-driver/mysql (passwd via
// DSN, password), modernc.org/sqlite (_auth_pass) and common token names.
var secretParams = []string{"password", "passwd", "pass", "pwd", "sslpassword", "_auth_pass", "token", "auth_token", "access_token", "secret", "client_secret"}

// isSecretParam reports whether a driver parameter carries a secret.
func isSecretParam(k string) bool {
	return slices.Contains(secretParams, strings.ToLower(strings.TrimSpace(k)))
}

// secrets holds the forms a password can take in text: as written,
// percent-encoded as in a URL's user info, path or query, and, for a
// password with white space or quotes, its longer pieces (drivers that
// redact their own messages sometimes leave a piece behind).
type secrets []string

func newSecrets(passwords ...string) secrets {
	var s secrets
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

// in reports whether text contains a secret as a token of its own: an
// occurrence glued to letters or digits on a side where the secret itself
// starts or ends with one ("test" inside "latest") does not count, so that a
// short password does not make every message suspect.
func (s secrets) in(text string) bool {
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

// scrub returns err, or, when its text contains the password, an error that
// withholds that text. Replacing the password inside the driver's text
// would garble it and tell which word it is; and the original must not stay
// reachable through Unwrap either. Callers classify err before scrubbing.
func (s secrets) scrub(err error) error {
	if err == nil || len(s) == 0 || !s.in(err.Error()) {
		return err
	}
	return errWithheld
}

// scrubConnect is scrub for errors from connecting, which some drivers fill
// with their whole configuration (pgx's *pgconn.ConnectError holds the
// password in a field, out of reach of any text check). Only the text is
// kept, plus the server's own error when there is one (it carries the
// SQLSTATE or error number and never the configuration).
func (s secrets) scrubConnect(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if len(s) > 0 && s.in(text) {
		text = errWithheld.Error()
	}
	if server := serverError(err); server != nil && !(len(s) > 0 && s.in(server.Error())) {
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

// statement returns q as errors, logs, traces and leak reports show it:
// shortened, or withheld when it contains the password anywhere. The check
// comes first, so that a cut through the password cannot show a piece of it.
func (s secrets) statement(q string) string { return shorten(s.scrubText(q)) }

// scrubText returns text, or a placeholder when it contains the password.
func (s secrets) scrubText(text string) string {
	if len(s) > 0 && s.in(text) {
		return "[withheld: contained the password]"
	}
	return text
}

var errWithheld = errors.New("driver message withheld: it contained the configured password")

// redactDSN shows a DSN with every secret replaced by "[redacted]". A DSN
// whose secrets cannot be located with certainty is withheld whole.
func redactDSN(driver, dsn string) string {
	out, ok := redactDSNParts(driver, dsn)
	if !ok || newSecrets(dsnPasswords(driver, dsn)...).in(out) {
		return "[DSN redacted]"
	}
	return out
}

func redactDSNParts(driver, dsn string) (string, bool) {
	if _, _, isURL := cutScheme(dsn); isURL {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", false
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		u.RawQuery = redactValues(u.Query())
		return strings.Replace(u.String(), "REDACTED", redacted, 1), true
	}
	if driver == DriverMySQL {
		if pw, ok := mysqlPassword(dsn); ok {
			colon := strings.IndexByte(dsn, ':')
			dsn = dsn[:colon+1] + redacted + dsn[colon+1+len(pw):]
		}
		return redactTrailingQuery(dsn)
	}
	if pairs, ok := parseKV(dsn); ok && isPostgres(driver) { // key=value (libpq) form
		var b strings.Builder
		last := 0
		for _, p := range pairs {
			if isSecretParam(p.key) {
				b.WriteString(dsn[last:p.start])
				b.WriteString(redacted)
				last = p.end
			}
		}
		b.WriteString(dsn[last:])
		return b.String(), true
	}
	return redactTrailingQuery(dsn) // a path, e.g. SQLite's
}

// redactTrailingQuery redacts the secret parameters of a "...?query" DSN
// that is not a URL (MySQL's form, an SQLite path).
func redactTrailingQuery(dsn string) (string, bool) {
	base, query, hasQuery := strings.Cut(dsn, "?")
	if !hasQuery {
		return dsn, true
	}
	v, err := url.ParseQuery(query)
	if err != nil {
		return "", false
	}
	return base + "?" + redactValues(v), true
}

// querySecrets returns the values of the secret parameters of a raw query,
// each decoded both as net/url does and as libpq and pgx do, for which a
// '+' is a plus sign, not a space (and as written, when neither decodes).
func querySecrets(raw string) []string {
	var out []string
	for part := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		secret := false
		for _, unescape := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
			if key, err := unescape(k); err == nil && isSecretParam(key) {
				secret = true
			}
		}
		if !secret {
			continue
		}
		decoded := false
		for _, unescape := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
			if d, err := unescape(v); err == nil {
				out, decoded = append(out, d), true
			}
		}
		if !decoded {
			out = append(out, v)
		}
	}
	return out
}

// redactValues encodes a query with secret parameters' values replaced.
func redactValues(v url.Values) string {
	for k := range v {
		if isSecretParam(k) {
			v[k] = []string{"REDACTED"}
		}
	}
	return strings.ReplaceAll(v.Encode(), "REDACTED", redacted)
}

// isPostgres reports whether driver speaks libpq's DSN forms; "" is the
// default driver, lib/pq.
func isPostgres(driver string) bool {
	return driver == "" || driver == DriverPostgres || driver == DriverPgx
}

// cutScheme splits "scheme://rest" into "scheme://" and rest.
func cutScheme(dsn string) (scheme, rest string, ok bool) {
	i := strings.Index(dsn, "://")
	if i <= 0 {
		return "", "", false
	}
	for _, c := range dsn[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return "", "", false
		}
	}
	return dsn[:i+3], dsn[i+3:], true
}

// mysqlPassword finds the password of go-sql-driver/mysql's
// user:password@net(addr)/db form as its parser does: between the first ':'
// and the last '@' before the last '/'.
func mysqlPassword(dsn string) (string, bool) {
	slash := strings.LastIndexByte(dsn, '/')
	if slash <= 0 {
		return "", false
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at <= 0 {
		return "", false
	}
	colon := strings.IndexByte(dsn[:at], ':')
	if colon < 0 {
		return "", false
	}
	return dsn[colon+1 : at], true
}

// dsnPasswords returns every secret a DSN holds (the password, and secret
// parameters), so that they can be kept out of output and error text. A
// DSN that is not a URL is read in every driver's form, not only in its own
// driver's: one written for another driver (a mistake the driver reports
// only when it connects) must not show its password meanwhile.
func dsnPasswords(driver, dsn string) []string {
	var out []string
	fromQuery := func(raw string) { out = append(out, querySecrets(raw)...) }
	if _, rest, isURL := cutScheme(dsn); isURL {
		if u, err := url.Parse(dsn); err == nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
			fromQuery(u.RawQuery)
		} else {
			// Unparsable (validation refuses it): guess generously, trying
			// every '@' as the end of the user info.
			for at := 0; at < len(rest); at++ {
				if rest[at] != '@' {
					continue
				}
				if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
					out = append(out, pw)
					if d, err := url.PathUnescape(pw); err == nil {
						out = append(out, d)
					}
					if i := strings.IndexAny(pw, "#%?/ "); i > 0 { // where a parser would cut it
						out = append(out, pw[:i])
					}
				}
			}
			if _, query, ok := strings.Cut(rest, "?"); ok { // pgx's parser may take what net/url refuses
				fromQuery(query)
			}
		}
		if driver != DriverMySQL {
			return out
		}
		// go-sql-driver/mysql takes no URLs: to it, "app://pw@tcp(h)/db"
		// is the user "app" with the password "//pw". Read it so too.
	}
	// libpq's key=value form: the settings before any syntax error count.
	pairs, isKV := parseKV(dsn)
	for _, p := range pairs {
		if isSecretParam(p.key) {
			out = append(out, p.value)
		}
		isKV = isKV && !strings.ContainsFunc(p.key, notParamNameRune) // real settings have names
	}
	// MySQL's user:password@net(addr)/db, except in an SQLite "file:" URI,
	// where a ':' and an '@' are parts of the path.
	if !(driver == DriverSQLite && strings.HasPrefix(dsn, "file:")) {
		if pw, ok := mysqlPassword(dsn); ok {
			out = append(out, pw)
		}
		// MySQL's parser ends the password at the last '@' before the last
		// '/', which an unescaped '/' or '@' in the query moves: unless the
		// DSN is a key=value string of named settings, any '@' may end it.
		if colon := strings.IndexByte(dsn, ':'); colon >= 0 && (!isKV || driver == DriverMySQL) {
			for at := colon + 1; at < len(dsn); at++ {
				if dsn[at] == '@' {
					out = append(out, dsn[colon+1:at])
				}
			}
		}
	}
	if _, query, ok := strings.Cut(dsn, "?"); ok {
		fromQuery(query)
	}
	return out
}

// kvPair is one keyword = value setting of a libpq connection string.
type kvPair struct {
	key        string
	value      string // unquoted and unescaped
	start, end int    // the value's bytes in the string, quotes included
}

// parseKV splits a libpq key=value connection string as libpq and lib/pq
// do: settings separated by white space, optional white space around '=',
// values either bare (up to white space) or in single quotes (which may hold
// white space), a backslash escaping the next character in both. ok is
// false when s is not in that form (a URL or a MySQL DSN); pairs then holds
// the settings read before the first error. An unterminated quoted value
// runs to the end, so that it is still redacted.
func parseKV(s string) (pairs []kvPair, ok bool) {
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpaceByte(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return pairs, len(pairs) > 0
		}
		k := i
		for i < len(s) && s[i] != '=' && !isSpaceByte(s[i]) { // libpq: any key up to '=' or space
			i++
		}
		key := s[k:i]
		skipSpace()
		if key == "" || i == len(s) || s[i] != '=' {
			return pairs, false
		}
		i++
		skipSpace()
		p := kvPair{key: key, start: i}
		var v strings.Builder
		quoted := i < len(s) && s[i] == '\''
		if quoted {
			i++
		}
		for i < len(s) {
			c := s[i]
			if quoted && c == '\'' {
				i++
				break
			}
			if !quoted && isSpaceByte(c) {
				break
			}
			if c == '\\' && i+1 < len(s) {
				i++
				c = s[i]
			}
			v.WriteByte(c)
			i++
		}
		p.value, p.end = v.String(), i
		pairs = append(pairs, p)
	}
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
