package drivertest

// TLS against a throwaway PostgreSQL server that accepts only TLS
// connections authenticated by a client certificate (pg_hba.conf:
// "hostssl all all 127.0.0.1/32 cert"), through both PostgreSQL drivers.
// The certificates are made for the test (pgtest.NewCA): a CA, a server
// certificate for 127.0.0.1 and localhost, a client certificate whose CN is
// the role, and a second, unrelated CA.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// writeFile writes a file with the given mode (WriteFile keeps the mode of
// an existing file, and the umask may narrow a new one).
func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsFiles are the client's certificate files.
type tlsFiles struct {
	ca, wrongCA, cert, key string
}

// startTLSServer starts a server that takes only TLS connections with a
// client certificate signed by its CA, and writes the client's files into a
// directory whose name has characters that URLs and key=value DSNs treat
// specially.
func startTLSServer(t *testing.T) (*pgtest.Server, tlsFiles) {
	t.Helper()
	ca := pgtest.NewCA(t, "dbm test CA")
	serverCert, serverKey := ca.Issue(t, "127.0.0.1", "127.0.0.1", "localhost")
	srv := pgtest.Start(t, pgtest.OnMissing(conformance.MissingServer),
		pgtest.WithFile("server.crt", serverCert), pgtest.WithFile("server.key", serverKey),
		pgtest.WithFile("client-ca.crt", ca.PEM),
		pgtest.WithSetting("ssl", "on"), pgtest.WithSetting("ssl_ca_file", "client-ca.crt"),
		pgtest.WithHBA("hostssl all all 127.0.0.1/32 cert"))
	clientCert, clientKey := ca.Issue(t, srv.Superuser) // the cert method maps the CN to the role
	dir := filepath.Join(t.TempDir(), `tls dir & 'quotes' \ #?=%`)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return srv, tlsFiles{
		ca:      writeFile(t, filepath.Join(dir, "root ca.crt"), ca.PEM, 0o644),
		wrongCA: writeFile(t, filepath.Join(dir, "other ca.crt"), pgtest.NewCA(t, "another CA").PEM, 0o644),
		cert:    writeFile(t, filepath.Join(dir, "client.crt"), clientCert, 0o644),
		key:     writeFile(t, filepath.Join(dir, "client.key"), clientKey, 0o600),
	}
}

// tlsConnect runs New with cfg and a debug logger, closing the manager when
// the test ends. It returns the log.
func tlsConnect(t *testing.T, cfg dbm.Config) (*dbm.Manager, string, error) {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.ConnectTimeout = 30 * time.Second
	m, err := dbm.New(ctx, cfg, dbm.WithLogger(logger))
	if err == nil {
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	return m, buf.String(), err
}

// TestPostgresTLSClientCertificate shows, for lib/pq and pgx, that the
// certificate fields of Config reach the driver: verify-full with the right
// CA and a client certificate logs in (and the server sees the certificate),
// while a missing client certificate, a wrong CA, and sslmode=disable are
// each refused with a classified error. Certificate failures are not
// retried.
func TestPostgresTLSClientCertificate(t *testing.T) {
	t.Parallel()
	srv, files := startTLSServer(t)
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverPgx} {
		base := dbm.Config{Driver: driver, Host: srv.Host, Port: srv.Port, User: srv.Superuser, Database: "postgres",
			Params: map[string]string{"application_name": "dbm_tls_test"}}
		t.Run(driver, func(t *testing.T) {
			for _, mode := range []string{"verify-full", ""} { // "": the default with certificates
				cfg := base
				cfg.SSLMode, cfg.SSLRootCert, cfg.SSLCert, cfg.SSLKey = mode, files.ca, files.cert, files.key
				m, log, err := tlsConnect(t, cfg)
				if err != nil {
					t.Fatalf("sslmode %q with the right CA and client certificate: %v\nlog:\n%s\nserver log:\n%s", mode, err, log, srv.Log())
				}
				var conn struct {
					SSL      bool   `db:"ssl"`
					ClientDN string `db:"client_dn"`
					User     string `db:"current_user"`
				}
				if err := m.Get(t.Context(), &conn, "SELECT ssl, coalesce(client_dn, '') AS client_dn, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); err != nil {
					t.Fatal(err)
				}
				if !conn.SSL || conn.ClientDN != "/CN="+srv.Superuser || conn.User != srv.Superuser {
					t.Errorf("sslmode %q: connection ssl=%v client_dn=%q user=%q; want TLS with the client certificate of %s",
						mode, conn.SSL, conn.ClientDN, conn.User, srv.Superuser)
				}
			}

			t.Run("no client certificate", func(t *testing.T) {
				cfg := base
				cfg.SSLMode, cfg.SSLRootCert = "verify-full", files.ca
				_, log, err := tlsConnect(t, cfg)
				wantRefused(t, err, log, dbm.ClassPermission, "certificate")
			})
			t.Run("wrong CA", func(t *testing.T) {
				for _, mode := range []string{"verify-full", ""} {
					cfg := base
					cfg.SSLMode, cfg.SSLRootCert, cfg.SSLCert, cfg.SSLKey = mode, files.wrongCA, files.cert, files.key
					_, log, err := tlsConnect(t, cfg)
					wantRefused(t, err, log, dbm.ClassConnection, "certificate")
				}
			})
			t.Run("sslmode=disable", func(t *testing.T) {
				cfg := base
				cfg.SSLMode = "disable"
				_, log, err := tlsConnect(t, cfg)
				wantRefused(t, err, log, dbm.ClassPermission, "no encryption")
			})
		})
	}
}

// wantRefused checks that New failed at once (no retry logged) with an
// error of class want that matches ErrConnection (every failure to connect
// does), whose text has fragment.
func wantRefused(t *testing.T, err error, log string, want dbm.Class, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatal("connected; want the connection refused")
	}
	t.Logf("refused: %v", err)
	if !errors.Is(err, dbm.ErrConnection) || dbm.Classify(err) != want {
		t.Errorf("err = %v (class %v), want class %v, matching ErrConnection", err, dbm.Classify(err), want)
	}
	if !strings.Contains(err.Error(), fragment) {
		t.Errorf("err = %v, want it to say %q", err, fragment)
	}
	if strings.Contains(log, "not answering yet") {
		t.Errorf("New retried a refusal that cannot change:\n%s", log)
	}
}
