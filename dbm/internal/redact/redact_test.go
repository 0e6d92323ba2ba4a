package redact

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// hardPasswords are passwords that take every form in a DSN (as in dbm's
// DSN tests): reserved characters, quotes, none, non-ASCII.
var hardPasswords = []string{
	"p@ss:w/rd?#%&= ok",
	`quote' and \backslash`,
	"",
	"日本語パス",
	"a+b=c;d e",
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
		got := DSN(tc.driver, tc.dsn)
		if strings.Contains(got, tc.secret) || got == tc.dsn {
			t.Errorf("DSN(%q) = %q: the secret shows", tc.dsn, got)
		}
		if !NewSecrets(Passwords(tc.driver, tc.dsn)...).In("x " + tc.secret + " x") {
			t.Errorf("Passwords(%q) = %q misses %q", tc.dsn, Passwords(tc.driver, tc.dsn), tc.secret)
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
		if got := DSN(tc.driver, tc.dsn); got != tc.want {
			t.Errorf("DSN(%q) = %q, want %q", tc.dsn, got, tc.want)
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
			if len(secret) < 4 || strings.Contains(user+query+DSN(driver, withOther), secret) {
				return
			}
			if got := DSN(driver, dsn); strings.Contains(got, secret) {
				t.Fatalf("DSN(%q) = %q shows %q", dsn, got, secret)
			}
			if !NewSecrets(Passwords(driver, dsn)...).In(" " + secret + " ") {
				t.Fatalf("Passwords(%q) misses %q", dsn, secret)
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
	s := NewSecrets(pw)
	for _, text := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("u", pw).String()} {
		if !s.In("error near " + text + " here") {
			t.Errorf("secrets do not recognise %q", text)
		}
	}
	dirty := fmt.Errorf("parse %q: bad", "postgres://u:"+url.QueryEscape(pw)+"@h")
	scrubbed := s.Scrub(dirty)
	for e := scrubbed; e != nil; e = errors.Unwrap(e) {
		if s.In(e.Error()) {
			t.Errorf("scrubbed chain still shows the password: %v", e)
		}
	}
	clean := errors.New("connection refused")
	if s.Scrub(clean) != clean {
		t.Error("an error without the password must be kept as is")
	}
	if len(NewSecrets("")) != 0 || NewSecrets("").In("anything") {
		t.Error("no password, no secrets")
	}
	if got := s.Text("ALTER ROLE x PASSWORD '" + pw + "'"); strings.Contains(got, pw) {
		t.Errorf("Text = %q", got)
	}
}

func TestShortPasswordsMatchAsTokens(t *testing.T) {
	s := NewSecrets("test")
	for text, want := range map[string]bool{
		`relation "latest_orders" does not exist`: false,
		"testing 1 2 3":                           false,
		"password authentication failed: test":    true,
		"parse postgres://u:test@h: invalid port": true,
		`SELECT 'test'`:                           true,
	} {
		if got := s.In(text); got != want {
			t.Errorf("In(%q) = %v, want %v", text, got, want)
		}
	}
	if IsSecretParam("allowNativePasswords") || IsSecretParam("application_name") || !IsSecretParam("sslpassword") || !IsSecretParam("Password") {
		t.Error("isSecretParam misjudges")
	}
}

// TestRedactKeyValueDSN covers libpq key=value DSNs whose password is
// quoted, escaped or spaced: the whole value must be redacted, and
// Passwords must return it as the driver reads it.
func TestRedactKeyValueDSN(t *testing.T) {
	tests := []struct {
		name, dsn, password, redactedDSN string
	}{
		{"bare", "host=h password=s3cret user=u", "s3cret", "host=h password=[redacted] user=u"},
		{"quoted with spaces", "host=h password='two words' user=u", "two words", "host=h password=[redacted] user=u"},
		{"quoted with escapes", `host=h password='it\'s one \\ path' user=u`, `it's one \ path`, "host=h password=[redacted] user=u"},
		{"bare with escaped space", `password=two\ words user=u`, "two words", "password=[redacted] user=u"},
		{"spaces around =", "host=h password = 'alpha beta' user=u", "alpha beta", "host=h password = [redacted] user=u"},
		{"last setting", "host=h password='x y'", "x y", "host=h password=[redacted]"},
		{"sslpassword before password", "sslpassword=k1 password=p1", "p1", "sslpassword=[redacted] password=[redacted]"},
		{"unterminated quote", "host=h password='alpha beta", "alpha beta", "host=h password=[redacted]"},
		{"URL with password in the query", "postgres://u@h/d?password=s3cret&sslmode=disable", "s3cret", "postgres://u@h/d?password=[redacted]&sslmode=disable"},
		{"URL without user, password in the query", "postgres://h/d?password=p%40ss", "p@ss", "postgres://h/d?password=[redacted]"},
		{"URL with sslpassword before password", "postgres://h/d?sslpassword=k1&password=s3cret", "s3cret", "postgres://h/d?password=[redacted]&sslpassword=[redacted]"},
		{"URL with user password and sslpassword", "postgres://u:s3cret@h/d?sslpassword=k1", "s3cret", "postgres://u:[redacted]@h/d?sslpassword=[redacted]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DSN("postgres", tc.dsn); got != tc.redactedDSN {
				t.Errorf("DSN(%q) = %q, want %q", tc.dsn, got, tc.redactedDSN)
			}
			if got := Passwords("postgres", tc.dsn); !slices.Contains(got, tc.password) {
				t.Errorf("Passwords(%q) = %q, want it to hold %q", tc.dsn, got, tc.password)
			}
			for _, w := range strings.Fields(tc.password) {
				if strings.Contains(DSN("postgres", tc.dsn), w) {
					t.Errorf("DSN(%q) still shows %q", tc.dsn, w)
				}
			}
		})
	}
}

// TestParseKVKeys checks libpq's key grammar (any characters but white
// space and '=') and that other forms are not key=value.
func TestParseKVKeys(t *testing.T) {
	pairs, ok := ParseKV("host=h app.tenant=acme password=x")
	if !ok || len(pairs) != 3 || pairs[1].Key != "app.tenant" || pairs[2].Value != "x" {
		t.Errorf("parseKV = %v, %v", pairs, ok)
	}
	for _, dsn := range []string{":memory:", "", "just words"} {
		if pairs, ok := ParseKV(dsn); ok {
			t.Errorf("ParseKV(%q) = %v, true; want not key=value", dsn, pairs)
		}
	}
}
