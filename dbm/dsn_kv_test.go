package dbm

import (
	"slices"
	"strings"
	"testing"
)

// TestRedactKeyValueDSN covers libpq key=value DSNs whose password is
// quoted, escaped or spaced: the whole value must be redacted, and
// dsnPassword must return it as the driver reads it.
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
			if got := redactDSN("postgres", tc.dsn); got != tc.redactedDSN {
				t.Errorf("redactDSN(%q) = %q, want %q", tc.dsn, got, tc.redactedDSN)
			}
			if got := dsnPasswords("postgres", tc.dsn); !slices.Contains(got, tc.password) {
				t.Errorf("dsnPasswords(%q) = %q, want it to hold %q", tc.dsn, got, tc.password)
			}
			for _, w := range strings.Fields(tc.password) {
				if strings.Contains(redactDSN("postgres", tc.dsn), w) {
					t.Errorf("redactDSN(%q) still shows %q", tc.dsn, w)
				}
			}
		})
	}
}

// TestParseKVKeys checks libpq's key grammar (any characters but white
// space and '=') and that other forms are not key=value.
func TestParseKVKeys(t *testing.T) {
	pairs, ok := parseKV("host=h app.tenant=acme password=x")
	if !ok || len(pairs) != 3 || pairs[1].key != "app.tenant" || pairs[2].value != "x" {
		t.Errorf("parseKV = %v, %v", pairs, ok)
	}
	for _, dsn := range []string{":memory:", "", "just words"} {
		if pairs, ok := parseKV(dsn); ok {
			t.Errorf("parseKV(%q) = %v, true; want not key=value", dsn, pairs)
		}
	}
}
