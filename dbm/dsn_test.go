package dbm

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
)

// hardPasswords must survive DSN building for every driver.
var hardPasswords = []string{
	"p@ss:w/rd?#%&= ok",
	`quote' and \backslash`,
	"",
	"日本語パス",
	"a+b=c;d e",
}

func TestPostgresURLRoundTrip(t *testing.T) {
	for _, pw := range hardPasswords {
		cfg := Config{Driver: DriverPostgres, Host: "db.example.com", User: "app user", Password: pw, Database: "my db",
			Params: map[string]string{"application_name": "api & co+1", "search_path": "a,b", "options": "-c search_path=app"}}.withDefaults()
		dsn := cfg.dsn()

		// lib/pq's own parser: deprecated for callers, but it is exactly
		// what lib/pq applies to a URL, which is what this test checks.
		kv, err := pq.ParseURL(dsn) //lint:ignore SA1019 see above
		if err != nil {
			t.Fatalf("pq.ParseURL(%q): %v", dsn, err)
		}
		if pw != "" && !strings.Contains(kv, "password=") {
			t.Errorf("lib/pq lost the password: %q", kv)
		}
		// pgx's parser gives the fields back exactly.
		pc, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("pgconn.ParseConfig(%q): %v", dsn, err)
		}
		if pc.Password != pw || pc.User != "app user" || pc.Database != "my db" || pc.Host != "db.example.com" || pc.Port != 5432 {
			t.Errorf("pgx parsed %q as user=%q password=%q db=%q host=%q port=%d", dsn, pc.User, pc.Password, pc.Database, pc.Host, pc.Port)
		}
		if pc.RuntimeParams["application_name"] != "api & co+1" || pc.RuntimeParams["search_path"] != "a,b" ||
			pc.RuntimeParams["options"] != "-c search_path=app" {
			t.Errorf("pgx read the params as %q", pc.RuntimeParams)
		}
		if pc, err := pq.NewConfig(dsn); err != nil || pc.ApplicationName != "api & co+1" || pc.Options != "-c search_path=app" {
			t.Errorf("lib/pq read application_name %q, options %q (%v)", pc.ApplicationName, pc.Options, err)
		}
		u, _ := url.Parse(dsn)
		if u.Query().Get("sslmode") != "prefer" {
			t.Errorf("sslmode default: %q", dsn)
		}
	}
}

// TestConfigTextDriversCannotCarry lists values that validation rejects
// because a driver would receive something else (found by FuzzConfigDSN).
func TestConfigTextDriversCannotCarry(t *testing.T) {
	for _, tc := range []struct {
		cfg           Config
		field, reason string
	}{
		{Config{Host: "db1,db2"}, "Host", "one host only"},
		{Config{Host: "db\\1"}, "Host", "not a host name"},
		{Config{Host: "db\n"}, "Host", "control character"},
		{Config{Host: "::%#"}, "Host", "not an IPv6 zone"},
		{Config{Host: "h", User: "u\x00x"}, "User", "NUL"},
		{Config{Host: "h", Password: "p\x00w"}, "Password", "NUL"},
		{Config{Driver: DriverSQLite, Database: "a\x00b"}, "Database", "NUL"},
		{Config{Host: "h", User: "\xea"}, "User", "not valid UTF-8"},
		{Config{Host: "h", Params: map[string]string{"k": "\xb0"}}, "Params", "not valid UTF-8"},
		{Config{Host: "h", Params: map[string]string{"search path": "x"}}, "Params", "names are letters"},
		{Config{Driver: DriverMySQL, User: "us:er"}, "User", "contains ':'"},
		{Config{Driver: DriverMySQL, Params: map[string]string{"a&b": "1"}}, "Params", "names are letters"},
	} {
		err := tc.cfg.withDefaults().validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Reason, tc.reason) {
			t.Errorf("%v: err = %v, want a ConfigError for %s saying %q", tc.cfg, err, tc.field, tc.reason)
		}
	}
	// What stays accepted: other scripts, IPv6 with a zone, socket paths,
	// and invalid UTF-8 where the driver passes bytes through.
	for _, cfg := range []Config{
		{Host: "bücher.example"}, {Host: "fe80::1%eth0"}, {Host: "/var/run/my sockets"}, {Host: "db_1.internal"},
		{Driver: DriverMySQL, User: "\xea", Database: "d"}, {Driver: DriverSQLite, Database: "//srv/share/app.db"},
	} {
		if err := cfg.withDefaults().validate(); err != nil {
			t.Errorf("%v: %v", cfg, err)
		}
	}
}

// TestConfigErrorIsTheSameEveryTime: with several bad parameters, the
// error names the same one on every call, not whichever map order gives
// (found by FuzzLoadConfig, whose two runs disagreed).
func TestConfigErrorIsTheSameEveryTime(t *testing.T) {
	for _, params := range []map[string]string{
		{"a b": "1", "c d": "2", "e f": "3", "g h": "4"},
		{"a": "\x00", "b": "\x00x", "c": "\xff", "d": "\x00y"},
	} {
		cfg := Config{Host: "h", Params: params}.withDefaults()
		first := cfg.validate()
		for range 30 {
			if err := cfg.validate(); err == nil || first == nil || err.Error() != first.Error() {
				t.Fatalf("validate gave %v, then %v", first, err)
			}
		}
	}
}

func TestPostgresURLSpaceInParam(t *testing.T) {
	dsn := Config{Driver: DriverPgx, Host: "h", Params: map[string]string{"options": "-c a=b"}}.withDefaults().dsn()
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil || pc.RuntimeParams["options"] != "-c a=b" {
		t.Errorf("pgx read %q as options=%q (%v): a space must be %%20, pgx keeps a '+'", dsn, pc.RuntimeParams["options"], err)
	}
}

func TestSQLiteDSNLeadingDoubleSlash(t *testing.T) {
	dsn := Config{Driver: DriverSQLite, Database: "//srv/x.db"}.dsn()
	if !strings.HasPrefix(dsn, "file:////srv/x.db?") {
		t.Errorf("DSN = %q: without an empty authority SQLite reads srv as a host and refuses it", dsn)
	}
}

func TestMySQLDSNRoundTrip(t *testing.T) {
	for _, pw := range hardPasswords {
		cfg := Config{Driver: DriverMySQL, Host: "127.0.0.1", User: "root", Password: pw, Database: "test db/x?y",
			Params: map[string]string{"loc": "Europe/Paris", "charset": "utf8mb4"}}.withDefaults()
		dsn := cfg.dsn()
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("mysql.ParseDSN(%q): %v", dsn, err)
		}
		if mc.Passwd != pw || mc.User != "root" || mc.DBName != "test db/x?y" || mc.Addr != "127.0.0.1:3306" || !mc.ParseTime {
			t.Errorf("mysql parsed %q as user=%q pass=%q db=%q addr=%q parseTime=%v", dsn, mc.User, mc.Passwd, mc.DBName, mc.Addr, mc.ParseTime)
		}
		if mc.Loc.String() != "Europe/Paris" {
			t.Errorf("loc = %v", mc.Loc)
		}
		// The driver's own formatter produces an equivalent DSN.
		again, err := mysql.ParseDSN(mc.FormatDSN())
		if err != nil || again.Passwd != pw {
			t.Errorf("FormatDSN round trip: %v, %q", err, again.Passwd)
		}
	}
}

func TestMySQLParseTimeCanBeTurnedOff(t *testing.T) {
	cfg := Config{Driver: DriverMySQL, Database: "d", Params: map[string]string{"parseTime": "false"}}.withDefaults()
	if mc, err := mysql.ParseDSN(cfg.dsn()); err != nil || mc.ParseTime {
		t.Errorf("parseTime=false ignored: %v %v", err, mc)
	}
}

func TestSQLiteDSN(t *testing.T) {
	a := Config{Driver: DriverSQLite, Database: ":memory:"}.dsn()
	b := Config{Driver: DriverSQLite, Database: ":memory:"}.dsn()
	if a == b {
		t.Errorf("two in-memory databases share a name: %q", a)
	}
	if !strings.Contains(a, "vfs=memdb") || !strings.HasPrefix(a, "file:/dbm-memory-") {
		t.Errorf("memory DSN = %q, want a named memdb database", a)
	}
	f := Config{Driver: DriverSQLite, Database: "/tmp/odd?name#1%.db"}.dsn()
	if !strings.HasPrefix(f, "file:/tmp/odd%3Fname%231%25.db?") || !strings.Contains(f, "foreign_keys") || !strings.Contains(f, "busy_timeout") {
		t.Errorf("file DSN = %q", f)
	}
}

// TestRedactKnowsTheDriverNames: package redact reads DSNs by driver name
// without importing dbm; its names must be dbm's.
func TestRedactKnowsTheDriverNames(t *testing.T) {
	for _, p := range [][2]string{{redact.DriverPostgres, DriverPostgres}, {redact.DriverPgx, DriverPgx}, {redact.DriverMySQL, DriverMySQL}, {redact.DriverSQLite, DriverSQLite}} {
		if p[0] != p[1] {
			t.Errorf("redact's driver name %q, dbm's %q", p[0], p[1])
		}
	}
}
