package dbm

import (
	"crypto/tls"
	"database/sql"
	"errors"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
	_ "modernc.org/sqlite"
	"modernc.org/sqlite/vfs"
)

// openRecorder is a file system for SQLite that opens nothing: it records
// the path SQLite asks for, which is how SQLite itself read the DSN.
type openRecorder struct{ names []string }

func (r *openRecorder) Open(name string) (fs.File, error) {
	r.names = append(r.names, name)
	return nil, fs.ErrNotExist
}

// FuzzConfigDSN builds the DSN of a Config with random fields for every
// driver. Either validation rejects the Config with a *ConfigError, or the
// driver's own parser accepts the DSN and reads back exactly the host, port,
// user, password, database and parameter that were set: pq.NewConfig and
// pgconn.ParseConfig for PostgreSQL, mysql.ParseDSN, and for SQLite the path
// SQLite itself opens. The verdict and its text do not change with the
// password.
func FuzzConfigDSN(f *testing.F) {
	rec := &openRecorder{}
	vfsName, fsys, err := vfs.New(rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = fsys.Close() })

	for i, pw := range hardPasswords {
		for d := range uint8(len(knownDrivers)) {
			f.Add(d, "db.example.com", uint16(0), "app user", pw, "my db/x?y", uint8(i), "application_name", "api&co")
		}
	}
	for _, host := range []string{"::1", "fe80::1%eth0", "/var/run/postgresql", "db_1.internal", "a,b", "h\n", "é.example"} {
		f.Add(uint8(0), host, uint16(6543), "u", "s3cr3t", "d", uint8(0), "", "")
		f.Add(uint8(2), host, uint16(3306), "u", "s3cr3t", "d", uint8(0), "", "")
	}
	for _, db := range []string{"/tmp/odd?name#1%.db", "//host/x.db", "a\x00b", "./rel.db", "日本.db", ":memory:"} {
		f.Add(uint8(3), "", uint16(0), "", "", db, uint8(0), "", "")
	}
	f.Add(uint8(2), "h", uint16(1), "us:er", "pw", "d", uint8(0), "", "")     // ':' ends a MySQL user name
	f.Add(uint8(2), "h", uint16(1), "u", "pw", "d", uint8(0), "a&b=c/d", "v") // a key MySQL's DSN cannot carry
	f.Add(uint8(1), "h", uint16(1), "u", "pw", "/abs", uint8(0), "", "")      // a database name starting with '/'
	f.Add(uint8(0), "h", uint16(1), "u\x00x", "pw", "d", uint8(0), "", "")
	// What the fuzzer found, each the minimised input of a fixed bug.
	f.Add(uint8(0), "0", uint16(0), "\xea", "0", "0", uint8(3), "0", "0")    // lib/pq read invalid UTF-8 as U+FFFD
	f.Add(uint8(1), "0", uint16(0), "0", "", "0", uint8(3), "0", " ")        // pgx read a space written as '+' as a '+'
	f.Add(uint8(0), "0", uint16(1), "0", "0", "0", uint8(3), " ", "0")       // lib/pq cut a parameter name at a space
	f.Add(uint8(0), "\\", uint16(47), "0", "0", "0", uint8(3), "0", "0")     // lib/pq refused the escaped host
	f.Add(uint8(0), "0", uint16(0), "0", "0", "0", uint8(6), "\xd5", "\xb0") // invalid UTF-8 split across name and value

	f.Fuzz(func(t *testing.T, driverIdx uint8, host string, port uint16, user, password, database string,
		sslIdx uint8, paramKey, paramValue string) {
		modes := append([]string{"", "bogus"}, sslModes...)
		cfg := Config{Driver: knownDrivers[int(driverIdx)%len(knownDrivers)], Host: host, Port: int(port), User: user,
			Password: password, Database: database, SSLMode: modes[int(sslIdx)%len(modes)]}
		if paramKey != "" || paramValue != "" {
			// "x_": not one of the drivers' own settings, whose values they judge.
			cfg.Params = map[string]string{"x_" + paramKey: paramValue}
		}
		c := cfg.withDefaults()
		err := c.validate()

		other := cfg
		other.Password = "\u2603other\u2603"
		if strings.Contains(password, "\x00") {
			other.Password += "\x00"
		}
		if !utf8.ValidString(password) {
			other.Password += "\xff" // invalid UTF-8 may be judged too
		}
		if err2 := other.withDefaults().validate(); (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("validation depends on the password:\n%v\n%v", err, err2)
		}
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v (%T) is not a *ConfigError matching ErrConfig", err, err)
			}
			return
		}
		dsn := c.dsn()
		param, want := "x_"+paramKey, paramValue
		switch c.Driver {
		case DriverPostgres, DriverPgx:
			checkPostgresDSN(t, c, dsn, param, want)
		case DriverMySQL:
			if name := mysqlTLSParam(c); name == mysqlTLSName(c) {
				// New registers the tls.Config it names (through dbm/dbmmysql).
				if err := mysql.RegisterTLSConfig(name, &tls.Config{}); err != nil {
					t.Fatal(err)
				}
			}
			mc, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatalf("mysql.ParseDSN(%q): %v", dsn, err)
			}
			addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
			if mc.User != c.User || mc.Passwd != c.Password || mc.Addr != addr || mc.DBName != c.Database {
				t.Fatalf("mysql read %q as user=%q password=%q addr=%q db=%q; want %q %q %q %q",
					dsn, mc.User, mc.Passwd, mc.Addr, mc.DBName, c.User, c.Password, addr, c.Database)
			}
			if c.Params != nil && mc.Params[param] != want {
				t.Fatalf("mysql read %q with %s=%q, want %q", dsn, param, mc.Params[param], want)
			}
		case DriverSQLite:
			if c.Database == ":memory:" || len(c.Database) > 1024 {
				return // no path; or one longer than SQLite takes (mxPathname), refused before any open
			}
			rec.names = nil
			db, err := sql.Open("sqlite", dsn+"&vfs="+vfsName)
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Ping() // fails: the recorder opens nothing
			_ = db.Close()
			if len(rec.names) == 0 || rec.names[0] != c.Database {
				t.Fatalf("SQLite opened %q for %q (DSN %q)", rec.names, c.Database, dsn)
			}
		}
	})
}

// checkPostgresDSN parses dsn with both PostgreSQL drivers' parsers.
func checkPostgresDSN(t *testing.T, c Config, dsn, param, want string) {
	t.Helper()
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgconn.ParseConfig(%q): %v", dsn, err)
	}
	qc, err := pq.NewConfig(dsn)
	if err != nil {
		t.Fatalf("pq.NewConfig(%q): %v", dsn, err)
	}
	for _, got := range []struct {
		parser                         string
		host, user, password, database string
		port                           uint16
		param                          string
	}{
		{"pgx", pc.Host, pc.User, pc.Password, pc.Database, pc.Port, pc.RuntimeParams[param]},
		{"pq", qc.Host, qc.User, qc.Password, qc.Database, qc.Port, qc.Runtime[param]},
	} {
		if got.host != c.Host || int(got.port) != c.Port || c.Password != "" && got.password != c.Password ||
			c.User != "" && got.user != c.User || c.Database != "" && got.database != c.Database ||
			c.Params != nil && got.param != want {
			t.Fatalf("%s read %q as host=%q port=%d user=%q password=%q db=%q %s=%q; want %q %d %q %q %q %q",
				got.parser, dsn, got.host, got.port, got.user, got.password, got.database, param, got.param,
				c.Host, c.Port, c.User, c.Password, c.Database, want)
		}
	}
}
