package dbm

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// This file keeps secrets out of output. The password is known from
// Config.Password or from the DSN; everything the manager prints or returns
// is checked against it (and its encoded forms) on the way out.

// secrets holds the forms a password can take in text: as written, and
// percent-encoded as in a URL's user info, path or query.
type secrets []string

func newSecrets(passwords ...string) secrets {
	var s secrets
	for _, p := range passwords {
		if p == "" {
			continue
		}
		for _, f := range []string{p, url.QueryEscape(p), url.PathEscape(p), url.UserPassword("", p).String()[1:]} {
			if f != "" && !slices.Contains(s, f) {
				s = append(s, f)
			}
		}
	}
	return s
}

// in reports whether text contains any form of a secret.
func (s secrets) in(text string) bool {
	for _, f := range s {
		if strings.Contains(text, f) {
			return true
		}
	}
	return false
}

// scrub returns err, or, when err's text contains the password, an error
// that withholds that text. Replacing the password inside the driver's text
// would garble it and, for a short password, tell which word it is; and the
// original error must not stay reachable through Unwrap either. Callers
// classify err before scrubbing it.
func (s secrets) scrub(err error) error {
	if err == nil || len(s) == 0 || !s.in(err.Error()) {
		return err
	}
	return &withheldError{}
}

// scrubText returns text, or a placeholder when it contains the password.
func (s secrets) scrubText(text string) string {
	if len(s) > 0 && s.in(text) {
		return "[withheld: contained the password]"
	}
	return text
}

// withheldError replaces a driver error whose text contained the password.
type withheldError struct{}

func (*withheldError) Error() string {
	return "driver message withheld: it contained the configured password"
}

// redactDSN shows a DSN with every secret replaced by "[redacted]". If the
// DSN is malformed in a way that defeats that, the whole DSN is withheld.
func redactDSN(dsn string) string {
	out := redactDSNParts(dsn)
	if newSecrets(dsnPasswords(dsn)...).in(out) {
		return "[DSN redacted]"
	}
	for _, m := range secretAssignment.FindAllStringSubmatchIndex(out, -1) {
		if !strings.HasPrefix(out[m[1]:], redacted) { // a secret in a form we did not parse
			return "[DSN redacted]"
		}
	}
	return out
}

// secretAssignment finds "password=", "sslpassword =", "token=" and the like
// anywhere in a redacted DSN, as a last check that each value was replaced.
var secretAssignment = regexp.MustCompile(`(?i)(pass|secret|token|sslkey)[a-z_]*\s*=\s*'?`)

func redactDSNParts(dsn string) string {
	if scheme, rest, ok := cutScheme(dsn); ok { // a URL, well-formed or not
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			user := rest[:at]
			if c := strings.IndexByte(user, ':'); c >= 0 {
				user = user[:c+1] + redacted
			}
			return redactQuery(scheme + user + rest[at:])
		}
		return redactQuery(dsn)
	}
	if pairs, ok := parseKV(dsn); ok { // key=value (libpq) form
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
		return b.String()
	}
	if pw, ok := mysqlPassword(dsn); ok {
		colon := strings.IndexByte(dsn, ':')
		return dsn[:colon+1] + redacted + dsn[colon+1+len(pw):]
	}
	return redactQuery(dsn) // e.g. an SQLite "file:" URI
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
// user:password@net(addr)/db form: between the first ':' and the last '@'
// before the last '/'.
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

// redactQuery replaces the values of secret parameters (password,
// sslpassword, ...) in a URL's query, keeping everything else as written.
func redactQuery(u string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	params := strings.Split(query, "&")
	for i, p := range params {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && isSecretParam(key) {
			params[i] = k + "=" + redacted
		}
	}
	out := base + "?" + strings.Join(params, "&")
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// dsnPasswords returns every secret a DSN holds (the password, also
// percent-decoded, and secret parameters), so that they can be kept out of
// error text.
func dsnPasswords(dsn string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if d, err := url.PathUnescape(v); err == nil && d != v {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(v); err == nil && d != v {
			out = append(out, d)
		}
	}
	queryParams := func(s string) {
		_, query, ok := strings.Cut(s, "?")
		if !ok {
			return
		}
		query, _, _ = strings.Cut(query, "#")
		for _, p := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(p, "=")
			if key, err := url.QueryUnescape(k); err == nil && isSecretParam(key) {
				add(v)
			}
		}
	}
	if _, rest, ok := cutScheme(dsn); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				add(pw)
			}
			queryParams(rest[at:])
		} else {
			queryParams(rest)
		}
		return out
	}
	if pairs, ok := parseKV(dsn); ok {
		for _, p := range pairs {
			if isSecretParam(p.key) {
				add(p.value)
			}
		}
		return out
	}
	if pw, ok := mysqlPassword(dsn); ok {
		add(pw)
	}
	queryParams(dsn)
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
// false when s is not in that form (a URL or a MySQL DSN). An unterminated
// quoted value runs to the end, so that it is still redacted.
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
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		key := s[k:i]
		skipSpace()
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, false
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
