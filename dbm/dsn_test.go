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
			Params: map[string]string{"application_name": "api&co", "search_path": "a,b"}}.withDefaults()
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
		if pc.RuntimeParams["application_name"] != "api&co" || pc.RuntimeParams["search_path"] != "a,b" {
			t.Errorf("params lost: %v", pc.RuntimeParams)
		}
		u, _ := url.Parse(dsn)
		if u.Query().Get("sslmode") != "prefer" {
			t.Errorf("sslmode default: %q", dsn)
		}
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

func TestRedactDSN(t *testing.T) {
	const pw = "s3cr3t!"
	for _, dsn := range []string{
		"postgres://u:" + pw + "@h:5432/d?sslmode=disable",
		"postgres://u:" + url.QueryEscape(pw) + "@h/d",
		"host=h user=u password=" + pw + " dbname=d",
		"u:" + pw + "@tcp(h:3306)/d?parseTime=true",
		// Malformed: url.Parse fails, the password must still be hidden.
		"postgres://app:" + pw + "#x@db.internal",
		"postgres://app:pa ss" + pw + "@127.0.0.1:5432",
		"postgres://app:" + pw + "%zz@h/d",
		"postgres://app:" + pw + "/x?y@h/d",
		// Secrets as parameters.
		"file:x.db?_auth_pass=" + pw,
		"host=h,password=" + pw,
		"h:5432/d?password=" + pw,
	} {
		got := redactDSN(dsn)
		if strings.Contains(got, pw) || strings.Contains(got, url.QueryEscape(pw)) {
			t.Errorf("redactDSN(%q) = %q: the password shows", dsn, got)
		}
		if got == dsn {
			t.Errorf("redactDSN(%q) changed nothing", dsn)
		}
	}
	for _, dsn := range []string{"postgres://u@h/d", "file:/tmp/x.db?_pragma=foreign_keys(1)", "u@tcp(h:3306)/d"} {
		if got := redactDSN(dsn); got != dsn {
			t.Errorf("DSN without secrets changed: %q -> %q", dsn, got)
		}
	}
}

// FuzzRedactDSN: whatever the DSN, the password it carries in a
// recognisable place never shows in the redacted form.
func FuzzRedactDSN(f *testing.F) {
	for _, pw := range hardPasswords {
		f.Add("postgres://u:"+pw+"@h/d", pw)
		f.Add("host=h password='"+pw+"'", pw)
		f.Add("u:"+pw+"@tcp(h)/d", pw)
	}
	f.Fuzz(func(t *testing.T, prefix, pw string) {
		if len(pw) < 4 || strings.ContainsAny(pw, "@/") {
			return // too short to check meaningfully, or it would move the separators
		}
		for _, dsn := range []string{
			"postgres://" + prefix + ":" + pw + "@h/d",
			"mysql:" + pw + "@tcp(h:3306)/d",
		} {
			if got := redactDSN(dsn); strings.Contains(got, pw) {
				t.Fatalf("redactDSN(%q) = %q shows the password", dsn, got)
			}
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
