package dbm

import (
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
)

// dsn returns the data source name for c, which must have its defaults
// applied and be valid. c.DSN wins when set.
func (c Config) dsn() string {
	if c.DSN != "" {
		k, v := c.poolerParam()
		return withDSNParam(c.DSN, k, v)
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
	if k, v := c.poolerParam(); k != "" && !q.Has(k) {
		q.Set(k, v)
	}
	for _, f := range c.tlsFiles() {
		if f.path != "" {
			q.Set(f.param, f.path) // percent-encoded: any character in a path survives
		}
	}
	if u.Host == "" && c.Host != "" {
		q.Set("host", c.Host)
		q.Set("port", strconv.Itoa(c.Port))
	}
	// libpq's URI grammar, which pgx follows, has no '+' for a space: it
	// wants %20 (url.Values writes '+', and a literal '+' as %2B).
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// mysqlDSN builds go-sql-driver/mysql's
// user:password@tcp(host:port)/dbname?params form, as its Config.FormatDSN
// would, without importing the driver. The driver's parser takes the last
// '/' and the last '@' before it, so the password needs no escaping; the
// database name and parameter values are escaped as FormatDSN does.
// parseTime=true is set unless Params says otherwise, so DATETIME columns
// scan into time.Time, and so is time_zone='+00:00' unless Params sets it
// or a loc other than UTC, so that the session reads the driver's UTC
// times as UTC.
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
	if v := mysqlTLSParam(c); v != "" {
		params["tls"] = v
	}
	if _, ok := params["parseTime"]; !ok {
		params["parseTime"] = "true"
	}
	if _, ok := params["time_zone"]; !ok && (params["loc"] == "" || params["loc"] == "UTC") {
		// The driver reads and writes times in loc (UTC); the server must
		// read them the same way, whatever its own time zone.
		params["time_zone"] = "'+00:00'"
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
// manager. Foreign keys are enforced, a busy database is waited on for
// up to 5s instead of failing at once, and times are written as
// "2006-01-02 15:04:05.999999999-07:00" (_time_format=sqlite), which
// SQLite's date functions understand, unless Params chooses a format.
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
	if !params.Has("_time_format") && !params.Has("_time_integer_format") {
		// The driver's default writes time.Time.String() ("... +0000 UTC
		// m=+0.01"), which SQLite's date functions cannot read.
		params.Set("_time_format", "sqlite")
	}
	params.Add("_pragma", "busy_timeout(5000)")
	params.Add("_pragma", "foreign_keys(1)")
	b.WriteByte('?')
	b.WriteString(params.Encode())
	return b.String()
}

// escapeURIPath escapes the characters that would end or corrupt the path
// part of an SQLite URI filename. A path starting with "//" gets an empty
// authority first, or SQLite would read its first segment as a host name.
func escapeURIPath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	if strings.HasPrefix(p, "//") {
		return "//" + r.Replace(p)
	}
	return r.Replace(p)
}

// address names the server for error messages: host:port, or the SQLite
// file. It never includes credentials.
func (c Config) address() string {
	switch {
	case c.DSN != "":
		return redact.DSN(c.Driver, c.DSN)
	case c.Driver == DriverSQLite:
		return c.Database
	default:
		return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
}

// poolerParam is the driver parameter that makes the driver safe behind
// c.Pooler: every statement in one round trip (Parse, Bind, Execute, Sync)
// on the unnamed statement, so that no step of it lands on a server
// connection that another client used in between, and no named prepared
// statement is left on one. "" when no pooler is set.
//
// pgx's cache_describe mode learns a statement's parameter and result types
// once (on the unnamed statement, in a round trip of its own that leaves
// nothing behind) and then runs it in one round trip with those types, so
// values are sent as they are without a pooler. Its "exec" mode would guess
// the types from the Go values instead: a time.Time into a timestamp
// without time zone column would then be converted to the session's zone.
func (c Config) poolerParam() (key, value string) {
	switch {
	case c.Pooler != PoolerPgBouncer:
		return "", ""
	case c.Driver == DriverPgx:
		return "default_query_exec_mode", "cache_describe"
	default:
		return "binary_parameters", "yes"
	}
}

// withDSNParam adds key=value to a PostgreSQL DSN, a URL or key/value
// pairs, unless the DSN sets key already. An empty key leaves dsn as it is.
func withDSNParam(dsn, key, value string) string {
	if key == "" {
		return dsn
	}
	if _, _, isURL := redact.CutScheme(dsn); isURL {
		u, err := url.Parse(dsn)
		if err != nil || u.Query().Has(key) {
			return dsn // an invalid URL is reported by validate
		}
		if u.Fragment != "" {
			u.RawQuery = strings.TrimPrefix(u.RawQuery+"&"+key+"="+value, "&")
			return u.String()
		}
		if u.RawQuery == "" {
			return strings.TrimSuffix(dsn, "?") + "?" + key + "=" + value
		}
		return strings.TrimSuffix(dsn, "&") + "&" + key + "=" + value
	}
	pairs, _ := redact.ParseKV(dsn)
	for _, p := range pairs {
		if p.Key == key {
			return dsn
		}
	}
	return strings.TrimRight(dsn, " \t\n") + " " + key + "=" + value
}
