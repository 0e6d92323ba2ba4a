package redact

import (
	"net/url"
	"strings"
)

// DSN shows a DSN with every secret replaced by "[redacted]". A DSN
// whose secrets cannot be located with certainty is withheld whole.
func DSN(driver, dsn string) string {
	out, ok := dsnParts(driver, dsn)
	if !ok || NewSecrets(Passwords(driver, dsn)...).In(out) {
		return "[DSN redacted]"
	}
	return out
}

func dsnParts(driver, dsn string) (string, bool) {
	if _, _, isURL := CutScheme(dsn); isURL {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", false
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		u.RawQuery = redactValues(u.Query())
		return strings.Replace(u.String(), "REDACTED", Redacted, 1), true
	}
	if driver == DriverMySQL {
		if pw, ok := mysqlPassword(dsn); ok {
			colon := strings.IndexByte(dsn, ':')
			dsn = dsn[:colon+1] + Redacted + dsn[colon+1+len(pw):]
		}
		return redactTrailingQuery(dsn)
	}
	if pairs, ok := ParseKV(dsn); ok && isPostgres(driver) { // key=value (libpq) form
		var b strings.Builder
		last := 0
		for _, p := range pairs {
			if IsSecretParam(p.Key) {
				b.WriteString(dsn[last:p.Start])
				b.WriteString(Redacted)
				last = p.End
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
			if key, err := unescape(k); err == nil && IsSecretParam(key) {
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
		if IsSecretParam(k) {
			v[k] = []string{"REDACTED"}
		}
	}
	return strings.ReplaceAll(v.Encode(), "REDACTED", Redacted)
}

// isPostgres reports whether driver speaks libpq's DSN forms; "" is the
// default driver, lib/pq.
func isPostgres(driver string) bool {
	return driver == "" || driver == DriverPostgres || driver == DriverPgx
}

// CutScheme splits "scheme://rest" into "scheme://" and rest.
func CutScheme(dsn string) (scheme, rest string, ok bool) {
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

// Passwords returns every secret a DSN holds (the password, and secret
// parameters), so that they can be kept out of output and error text. A
// DSN that is not a URL is read in every driver's form, not only in its own
// driver's: one written for another driver (a mistake the driver reports
// only when it connects) must not show its password meanwhile.
func Passwords(driver, dsn string) []string {
	var out []string
	fromQuery := func(raw string) { out = append(out, querySecrets(raw)...) }
	if _, rest, isURL := CutScheme(dsn); isURL {
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
	pairs, isKV := ParseKV(dsn)
	for _, p := range pairs {
		if IsSecretParam(p.Key) {
			out = append(out, p.Value)
		}
		isKV = isKV && !strings.ContainsFunc(p.Key, NotParamNameRune) // real settings have names
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

// KVPair is one keyword = value setting of a libpq connection string.
type KVPair struct {
	Key        string
	Value      string // unquoted and unescaped
	Start, End int    // the value's bytes in the string, quotes included
}

// ParseKV splits a libpq key=value connection string as libpq and lib/pq
// do: settings separated by white space, optional white space around '=',
// values either bare (up to white space) or in single quotes (which may hold
// white space), a backslash escaping the next character in both. ok is
// false when s is not in that form (a URL or a MySQL DSN); pairs then holds
// the settings read before the first error. An unterminated quoted value
// runs to the end, so that it is still Redacted.
func ParseKV(s string) (pairs []KVPair, ok bool) {
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
		p := KVPair{Key: key, Start: i}
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
		p.Value, p.End = v.String(), i
		pairs = append(pairs, p)
	}
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// NotParamNameRune reports a character that no driver parameter name has
// and that would break the DSN the name is written into.
func NotParamNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
}
