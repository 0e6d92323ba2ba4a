package dbmmysql_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
	_ "github.com/dbmanager-go/dbmanager/dbm/dbmmysql"
	"github.com/dbmanager-go/dbmanager/dbm/internal/mariadbtest"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Config.SSLMode sets the TLS of a MySQL connection as it does for
// PostgreSQL, against a MariaDB started with a certificate for 127.0.0.1
// signed by a CA made for the test.
func TestMySQLSSLModes(t *testing.T) {
	ca := pgtest.NewCA(t, "dbm mariadb test CA")
	cert, key := ca.Issue(t, "mariadb", "127.0.0.1")
	srv := mariadbtest.Start(t, mariadbtest.WithTLS(ca.PEM, cert, key))
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	otherCA := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherCA, pgtest.NewCA(t, "another CA").PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		host    string // "" for 127.0.0.1, the name on the certificate
		mode    string
		rootCA  string
		wantTLS bool
		wantErr bool
	}{
		{name: "disable", mode: "disable"},
		{name: "prefer", mode: "prefer", wantTLS: true},
		{name: "require", mode: "require", wantTLS: true},
		{name: "verify-full with the CA", mode: "verify-full", rootCA: caFile, wantTLS: true},
		{name: "verify-full with another CA", mode: "verify-full", rootCA: otherCA, wantErr: true},
		{name: "verify-full, name not on the certificate", host: "localhost", mode: "verify-full", rootCA: caFile, wantErr: true},
		{name: "verify-ca, name not on the certificate", host: "localhost", mode: "verify-ca", rootCA: caFile, wantTLS: true},
		{name: "verify-ca with another CA", mode: "verify-ca", rootCA: otherCA, wantErr: true},
		{name: "require with a CA file checks the chain", mode: "require", rootCA: otherCA, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := c.host
			if host == "" {
				host = srv.Host
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := dbm.Config{Driver: dbm.DriverMySQL, Host: host, Port: srv.Port, User: "root", Database: "mysql",
				SSLMode: c.mode, SSLRootCert: c.rootCA, ConnectTimeout: 5 * time.Second}
			m, err := dbm.New(ctx, cfg)
			if c.wantErr {
				if err == nil {
					m.Close()
					t.Fatalf("New(%s) succeeded; want a refused certificate", c.mode)
				}
				if !errors.Is(err, dbm.ErrConnection) || !strings.Contains(err.Error(), "certificate") {
					t.Errorf("New(%s) = %v; want ErrConnection for the certificate", c.mode, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%s): %v\n%s", c.mode, err, srv.Log())
			}
			defer m.Close()
			type status struct {
				Name  string `db:"Variable_name"`
				Value string `db:"Value"`
			}
			var st status
			if err := m.Get(ctx, &st, "SHOW SESSION STATUS LIKE 'Ssl_cipher'"); err != nil {
				t.Fatal(err)
			}
			if got := st.Value != ""; got != c.wantTLS {
				t.Errorf("SSLMode %s: Ssl_cipher = %q; want TLS %v", c.mode, st.Value, c.wantTLS)
			}
		})
	}
}

// Without dbm/dbmmysql the certificate modes cannot be set up; the error
// says what to import. (Here it is imported, so this checks the path
// through New with a file that cannot be read instead.)
func TestMySQLTLSBadFile(t *testing.T) {
	_, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root",
		SSLMode: "verify-full", SSLRootCert: filepath.Join(t.TempDir(), "missing.pem")})
	var ce *dbm.ConfigError
	if !errors.As(err, &ce) || ce.Field != "SSLRootCert" {
		t.Errorf("New with a missing CA file = %v; want a ConfigError on SSLRootCert", err)
	}
}
