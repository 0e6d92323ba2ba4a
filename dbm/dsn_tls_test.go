package dbm

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// hardPathNames are file names with the characters that a URL, a libpq
// key=value string or a shell treats specially.
var hardPathNames = []string{
	"plain",
	"with space",
	`quote ' and \ backslash`,
	"hash#question?amp&eq=pct%41plus+",
	"semi;colon,comma:@at",
	"証明書 ✓",
	"trailing space ",
}

// writeTLSFiles writes a CA, a client certificate and its key (mode 0600)
// into dir, all valid, so that pgx (which reads them while parsing a DSN)
// accepts them.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	authority := pgtest.NewCA(t, "dsn test CA")
	certPEM, keyPEM := authority.Issue(t, "app")
	ca, cert, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	for path, data := range map[string][]byte{ca: authority.PEM, cert: certPEM, key: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestPostgresDSNCertificatePaths builds DSNs with certificate paths full
// of special characters and reads them back with both drivers' parsers, in
// the URL form dbm builds and in the key=value form lib/pq turns it into.
// pgx reads the files while parsing, so a path it decoded wrongly fails.
func TestPostgresDSNCertificatePaths(t *testing.T) {
	for _, name := range hardPathNames {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			ca, cert, key := writeTLSFiles(t, dir)
			cfg := Config{Host: "db.example.com", User: "app", Database: "app",
				SSLRootCert: ca, SSLCert: cert, SSLKey: key}.withDefaults()
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			dsn := cfg.dsn()
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatalf("url.Parse(%q): %v", dsn, err)
			}
			if got := u.Query().Get("sslmode"); got != "verify-full" {
				t.Errorf("sslmode = %q, want verify-full: the default when a certificate is set", got)
			}

			//lint:ignore SA1019 ParseURL is what lib/pq applies to a URL
			kv, err := pq.ParseURL(dsn)
			if err != nil {
				t.Fatalf("pq.ParseURL(%q): %v", dsn, err)
			}
			for form, s := range map[string]string{"URL": dsn, "key=value": kv} {
				pc, err := pq.NewConfig(s)
				if err != nil {
					t.Fatalf("lib/pq, %s form %q: %v", form, s, err)
				}
				if pc.SSLRootCert != ca || pc.SSLCert != cert || pc.SSLKey != key || pc.SSLMode != "verify-full" {
					t.Errorf("lib/pq, %s form %q: sslrootcert %q sslcert %q sslkey %q sslmode %q", form, s, pc.SSLRootCert, pc.SSLCert, pc.SSLKey, pc.SSLMode)
				}
				xc, err := pgconn.ParseConfig(s)
				if err != nil {
					t.Fatalf("pgx, %s form %q: %v", form, s, err)
				}
				if xc.TLSConfig == nil || xc.TLSConfig.RootCAs == nil || len(xc.TLSConfig.Certificates) != 1 || xc.TLSConfig.InsecureSkipVerify {
					t.Errorf("pgx, %s form: TLS config without the CA, the client certificate or verification", form)
				}
			}
		})
	}
}
