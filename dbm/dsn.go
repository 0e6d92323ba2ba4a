package dbm

import (
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// dsn returns the data source name for c, which must have its defaults
// applied and be valid. c.DSN wins when set.
func (c Config) dsn() string {
	if c.DSN != "" {
		return c.DSN
	}
	switch c.Driver {
	case DriverMySQL:
		return c.mysqlDSN()
	case DriverSQLite:
		return c.sqliteDSN()
	default:
		return c.postgresURL()
	}
}

// postgresURL builds a postgres:// URL understood by both lib/pq and pgx. The
// user and password are percent-encoded by net/url, so any character works.
func (c Config) postgresURL() string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + c.Database}
	if strings.HasPrefix(c.Host, "/") { // a Unix socket directory
		u.Host = ""
	}
	switch {
	case c.Password != "":
		u.User = url.UserPassword(c.User, c.Password)
	case c.User != "":
		u.User = url.User(c.User)
	}
	q := url.Values{}
	for k, v := range c.Params {
		q.Set(k, v)
	}
	if c.SSLMode != "" {
		q.Set("sslmode", c.SSLMode)
	}
	if u.Host == "" && c.Host != "" {
		q.Set("host", c.Host)
		q.Set("port", strconv.Itoa(c.Port))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// mysqlDSN builds go-sql-driver/mysql's
// user:password@tcp(host:port)/dbname?params form, as its Config.FormatDSN
// would, without importing the driver. The driver's parser takes the last
// '/' and the last '@' before it, so the password needs no escaping; the
// database name and parameter values are escaped as FormatDSN does.
// parseTime=true is set unless Params says otherwise, so DATETIME columns
// scan into time.Time.
func (c Config) mysqlDSN() string {
	var b strings.Builder
	if c.User != "" || c.Password != "" {
		b.WriteString(c.User)
		if c.Password != "" {
			b.WriteByte(':')
			b.WriteString(c.Password)
		}
		b.WriteByte('@')
	}
	b.WriteString("tcp(")
	b.WriteString(net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	b.WriteString(")/")
	b.WriteString(url.PathEscape(c.Database))
	params := maps.Clone(c.Params)
	if params == nil {
		params = map[string]string{}
	}
	if _, ok := params["parseTime"]; !ok {
		params["parseTime"] = "true"
	}
	for i, k := range slices.Sorted(maps.Keys(params)) {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(params[k]))
	}
	return b.String()
}

// memoryDBs numbers in-memory SQLite databases so that two managers never
// share one.
var memoryDBs atomic.Int64

// sqliteDSN builds a modernc.org/sqlite URI. ":memory:" becomes a named
// database in SQLite's memdb VFS, which every connection of the pool shares
// (a plain ":memory:" would give each connection its own empty database);
// the manager keeps one connection to it open so it lives as long as the
// manager. Foreign keys are enforced and a busy database is waited on for
// up to 5s instead of failing at once.
func (c Config) sqliteDSN() string {
	var b strings.Builder
	b.WriteString("file:")
	if c.Database == ":memory:" {
		b.WriteString("/dbm-memory-")
		b.WriteString(strconv.FormatInt(memoryDBs.Add(1), 10))
	} else {
		b.WriteString(escapeURIPath(c.Database))
	}
	params := url.Values{}
	for k, v := range c.Params {
		params.Set(k, v)
	}
	if c.Database == ":memory:" {
		params.Set("vfs", "memdb")
	}
	params.Add("_pragma", "busy_timeout(5000)")
	params.Add("_pragma", "foreign_keys(1)")
	b.WriteByte('?')
	b.WriteString(params.Encode())
	return b.String()
}

// escapeURIPath escapes the characters that would end or corrupt the path
// part of an SQLite URI filename.
func escapeURIPath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	return r.Replace(p)
}

// address names the server for error messages: host:port, or the SQLite
// file. It never includes credentials.
func (c Config) address() string {
	switch {
	case c.DSN != "":
		return redactDSN(c.DSN)
	case c.Driver == DriverSQLite:
		return c.Database
	default:
		return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
}

// redactDSN replaces the password in a URL, key=value or MySQL DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Opaque == "" && (u.User != nil || u.RawQuery != "") {
		out := dsn
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			out = strings.Replace(u.String(), "xxxxx", redacted, 1)
		}
		return redactQuery(out)
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
	if i := strings.Index(dsn, "password="); i >= 0 {
		end := strings.IndexAny(dsn[i:], " &;")
		if end < 0 {
			end = len(dsn) - i
		}
		return dsn[:i] + "password=" + redacted + dsn[i+end:]
	}
	if slash := strings.LastIndexByte(dsn, '/'); slash > 0 { // MySQL form
		if at := strings.LastIndexByte(dsn[:slash], '@'); at > 0 {
			if colon := strings.IndexByte(dsn[:at], ':'); colon >= 0 {
				return dsn[:colon+1] + redacted + dsn[at:]
			}
		}
	}
	return dsn
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

// dsnPassword extracts the password from a DSN, so that it can be removed
// from driver error text.
func dsnPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Opaque == "" && (u.User != nil || u.Query().Has("password")) {
		if p, has := u.User.Password(); has {
			return p
		}
		return u.Query().Get("password")
	}
	if pairs, ok := parseKV(dsn); ok {
		for _, p := range pairs {
			if p.key == "password" {
				return p.value
			}
		}
		return ""
	}
	if i := strings.Index(dsn, "password="); i >= 0 {
		rest := dsn[i+len("password="):]
		if end := strings.IndexAny(rest, " &;"); end >= 0 {
			rest = rest[:end]
		}
		return strings.Trim(rest, "'")
	}
	if slash := strings.LastIndexByte(dsn, '/'); slash > 0 {
		if at := strings.LastIndexByte(dsn[:slash], '@'); at > 0 {
			if colon := strings.IndexByte(dsn[:at], ':'); colon >= 0 {
				return dsn[colon+1 : at]
			}
		}
	}
	return ""
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

// redactor returns a function that removes the password, and its encoded
// forms, from text. It returns nil when there is nothing to hide.
func redactor(password string) func(string) string {
	if password == "" {
		return nil
	}
	forms := []string{password}
	for _, f := range []string{url.QueryEscape(password), url.PathEscape(password), url.UserPassword("", password).String()[1:]} {
		if f != password && f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, redacted)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
