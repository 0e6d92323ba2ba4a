package dbm

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
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

// redactCases are DSNs with a secret (the second field) in every form the
// drivers accept, including malformed ones.
var redactCases = []struct{ driver, dsn, secret string }{
	{"postgres", "postgres://u:s3cr3t!@h:5432/d?sslmode=disable", "s3cr3t!"},
	{"postgres", "postgres://u:s3cr3t%21@h/d", "s3cr3t!"},
	{"postgres", "host=h user=u password=s3cr3t! dbname=d", "s3cr3t!"},
	{"postgres", "host=h password='two words' app.tenant=acme", "two words"},
	{"mysql", "u:s3cr3t!@tcp(h:3306)/d?parseTime=true", "s3cr3t!"},
	{"mysql", "u:pw@tcp(h:3306)/d?password=s3cr3t!x", "s3cr3t!x"},
	// Malformed: url.Parse fails, the password must still be hidden.
	{"postgres", "postgres://app:s3cr3t#x@db.internal", "s3cr3t"},
	{"postgres", "postgres://app:pa ss s3cr3t@127.0.0.1:5432", "s3cr3t"},
	{"postgres", "postgres://app:s3cr3t%zz@h/d", "s3cr3t"},
	// '@' in the query must not move the user info.
	{"postgres", "postgres://postgres:s3cr3t@127.0.0.1/test?application_name=ops@example.com", "s3cr3t"},
	{"postgres", "postgres://postgres@127.0.0.1/test?application_name=ops@example.com&pass%77ord=s3cr3t", "s3cr3t"},
	// A DSN in another driver's form, or cut short: the driver fails on it
	// when connecting, but printing the Config must not show the password.
	{"mysql", "host=h password=s3cr3t! dbname=d", "s3cr3t!"},
	{"postgres", "u:s3cr3t!@tcp(h:3306)/d", "s3cr3t!"},
	{"sqlite", "u:s3cr3t!@tcp(h:3306)/d", "s3cr3t!"},
	{"postgres", "host=h password=s3cr3t! dbname", "s3cr3t!"},
	// libpq and pgx read a '+' in a URL's query as a plus sign (FuzzRedactDSN).
	{"postgres", "postgres://u@h/d?password=a%01b+cd", "a\x01b+cd"},
	// ... also where net/url refuses the URL (a tab) and pgx does not.
	{"postgres", "postgres://u@h/d?password=a%01b\tcd", "a\x01b\tcd"},
	// A MySQL-form DSN whose query holds '@' and '/' (FuzzLoadConfig).
	{"postgres", "u:s3cr3t@tcp(h)/d?x=a@b/c", "s3cr3t"},
	// A MySQL user name that looks like a URL scheme (FuzzRedactDSN).
	{"mysql", "app://s3cr3t@/d", "//s3cr3t"},
	{"mysql", "app://s3cr3t@tcp(h:3306)/d", "//s3cr3t"},
	// Secrets as parameters.
	{"sqlite", "file:x.db?_auth_pass=s3cr3t", "s3cr3t"},
	{"postgres", "postgres://h/d?sslpassword=s3cr3t", "s3cr3t"},
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range redactCases {
		got := redactDSN(tc.driver, tc.dsn)
		if strings.Contains(got, tc.secret) || got == tc.dsn {
			t.Errorf("redactDSN(%q) = %q: the secret shows", tc.dsn, got)
		}
		if !newSecrets(dsnPasswords(tc.driver, tc.dsn)...).in("x " + tc.secret + " x") {
			t.Errorf("dsnPasswords(%q) = %q misses %q", tc.dsn, dsnPasswords(tc.driver, tc.dsn), tc.secret)
		}
	}
	for _, tc := range []struct{ driver, dsn, want string }{
		{"postgres", "postgres://u@h/d", "postgres://u@h/d"},
		{"postgres", "postgres://db:5432/app?application_name=me@example.com", "postgres://db:5432/app?application_name=me%40example.com"},
		{"sqlite", "file:/tmp/x.db?_pragma=foreign_keys(1)", "file:/tmp/x.db?_pragma=foreign_keys%281%29"},
		{"sqlite", "file:/data/a@b/app.db", "file:/data/a@b/app.db"},
		{"mysql", "u@tcp(h:3306)/d", "u@tcp(h:3306)/d"},
		{"mysql", "u:pw@tcp(h:3306)/d?allowNativePasswords=true", "u:[redacted]@tcp(h:3306)/d?allowNativePasswords=true"},
	} {
		if got := redactDSN(tc.driver, tc.dsn); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}

// FuzzRedactDSN builds DSNs from random parts and asks the drivers' own
// parsers (pgx for URLs and key=value, go-sql-driver/mysql) what the
// password is: redactDSN must hide it and dsnPasswords must know it.
func FuzzRedactDSN(f *testing.F) {
	for _, pw := range hardPasswords {
		f.Add("u", pw, "application_name=x@y")
	}
	f.Add("u", "s3cr3t", "pass%77ord=other1")
	f.Fuzz(func(t *testing.T, user, pw, query string) {
		if len(pw) < 4 || strings.Contains(user+query+"host=h user=u tcp(h:3306)/d postgres://h:5432/d", pw) {
			return // too short, or also legitimately present elsewhere in the DSN
		}
		u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: "h:5432", Path: "/d", RawQuery: query}
		const other = "\u2603" // another password
		otherURL := u
		otherURL.User = url.UserPassword(user, other)
		// check looks for secret in the redacted dsn, unless the same DSN
		// with another password shows it too: then the user name or query
		// holds it, maybe percent-encoded or next to the ':' ("%2000:" holds
		// "000:").
		check := func(driver, dsn, withOther, secret string) {
			if len(secret) < 4 || strings.Contains(user+query+redactDSN(driver, withOther), secret) {
				return
			}
			if got := redactDSN(driver, dsn); strings.Contains(got, secret) {
				t.Fatalf("redactDSN(%q) = %q shows %q", dsn, got, secret)
			}
			if !newSecrets(dsnPasswords(driver, dsn)...).in(" " + secret + " ") {
				t.Fatalf("dsnPasswords(%q) misses %q", dsn, secret)
			}
		}
		if pc, err := pgconn.ParseConfig(u.String()); err == nil {
			check("pgx", u.String(), otherURL.String(), pc.Password)
		}
		kv := "host=h user=u password='" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(pw) + "'"
		if pc, err := pgconn.ParseConfig(kv); err == nil {
			check("pgx", kv, "host=h user=u password='"+other+"'", pc.Password)
		}
		my := user + ":" + pw + "@tcp(h:3306)/d"
		if mc, err := mysql.ParseDSN(my); err == nil {
			check("mysql", my, user+":"+other+"@tcp(h:3306)/d", mc.Passwd)
		}
	})
}

func TestSecretsAndScrub(t *testing.T) {
	pw := "p@ss:w/rd?#%&= ok"
	s := newSecrets(pw)
	for _, text := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("u", pw).String()} {
		if !s.in("error near " + text + " here") {
			t.Errorf("secrets do not recognise %q", text)
		}
	}
	dirty := fmt.Errorf("parse %q: bad", "postgres://u:"+url.QueryEscape(pw)+"@h")
	scrubbed := s.scrub(dirty)
	for e := scrubbed; e != nil; e = errors.Unwrap(e) {
		if s.in(e.Error()) {
			t.Errorf("scrubbed chain still shows the password: %v", e)
		}
	}
	clean := errors.New("connection refused")
	if s.scrub(clean) != clean {
		t.Error("an error without the password must be kept as is")
	}
	if len(newSecrets("")) != 0 || newSecrets("").in("anything") {
		t.Error("no password, no secrets")
	}
	if got := s.scrubText("ALTER ROLE x PASSWORD '" + pw + "'"); strings.Contains(got, pw) {
		t.Errorf("scrubText = %q", got)
	}
}

func TestShortPasswordsMatchAsTokens(t *testing.T) {
	s := newSecrets("test")
	for text, want := range map[string]bool{
		`relation "latest_orders" does not exist`: false,
		"testing 1 2 3":                           false,
		"password authentication failed: test":    true,
		"parse postgres://u:test@h: invalid port": true,
		`SELECT 'test'`:                           true,
	} {
		if got := s.in(text); got != want {
			t.Errorf("in(%q) = %v, want %v", text, got, want)
		}
	}
	if isSecretParam("allowNativePasswords") || isSecretParam("application_name") || !isSecretParam("sslpassword") || !isSecretParam("Password") {
		t.Error("isSecretParam misjudges")
	}
}
