package dbm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// keyMaterial stands in for a private key's contents in files that must
// never be read into anything printed.
const keyMaterial = "KEY-MATERIAL-Zq9"

// certFiles are valid certificate files in a temporary directory, plus
// files that are wrong in one way each.
type certFiles struct {
	dir, ca, cert, key string
	openKey            string // the key with mode 0644
	notPEM             string // a file without a certificate
	fakeKey            string // a "key" holding keyMaterial, mode 0644
}

func newCertFiles(t *testing.T) certFiles {
	t.Helper()
	dir := t.TempDir()
	ca := pgtest.NewCA(t, "config test CA")
	certPEM, keyPEM := ca.Issue(t, "app")
	f := certFiles{dir: dir}
	for _, file := range []struct {
		path *string
		name string
		data []byte
		mode os.FileMode
	}{
		{&f.ca, "ca.crt", ca.PEM, 0o644},
		{&f.cert, "client.crt", certPEM, 0o644},
		{&f.key, "client.key", keyPEM, 0o600},
		{&f.openKey, "open.key", keyPEM, 0o644},
		{&f.notPEM, "notes.txt", []byte("not a certificate\n"), 0o644},
		{&f.fakeKey, "fake.key", []byte(keyMaterial), 0o644},
	} {
		*file.path = filepath.Join(dir, file.name)
		if err := os.WriteFile(*file.path, file.data, file.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(*file.path, file.mode); err != nil { // the umask may have narrowed it
			t.Fatal(err)
		}
	}
	return f
}

// TestLoadConfigCertificateVariables reads the certificate paths from the
// environment and checks they are printed (paths are not secrets).
func TestLoadConfigCertificateVariables(t *testing.T) {
	clearDBEnv(t)
	f := newCertFiles(t)
	t.Setenv("DB_SSLROOTCERT", f.ca)
	t.Setenv("DB_SSLCERT", f.cert)
	t.Setenv("DB_SSLKEY", f.key)
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SSLRootCert != f.ca || cfg.SSLCert != f.cert || cfg.SSLKey != f.key {
		t.Errorf("LoadConfig = %v", cfg)
	}
	want := "SSLRootCert:" + f.ca + " SSLCert:" + f.cert + " SSLKey:" + f.key
	if s := fmt.Sprint(cfg); !strings.Contains(s, want) {
		t.Errorf("fmt.Sprint(cfg) = %s, want it to show %s", s, want)
	}
}

// TestCertificateConfigErrors checks each way the certificate settings can
// be wrong: LoadConfig names the variable and the problem, New (which
// validates a hand-written Config the same way) returns the same error, and
// no error shows the contents of a key file.
func TestCertificateConfigErrors(t *testing.T) {
	f := newCertFiles(t)
	missing := filepath.Join(f.dir, "missing.crt")
	tests := []struct {
		name   string
		env    map[string]string
		field  string // the ConfigError's Field
		reason string // a fragment of the message
	}{
		{"root cert missing", map[string]string{"DB_SSLROOTCERT": missing}, "SSLRootCert", "file does not exist"},
		{"root cert is a directory", map[string]string{"DB_SSLROOTCERT": f.dir}, "SSLRootCert", "not a readable file"},
		{"root cert without a certificate", map[string]string{"DB_SSLROOTCERT": f.notPEM}, "SSLRootCert", "holds no PEM certificate"},
		{"client cert is a key", map[string]string{"DB_SSLCERT": f.fakeKey, "DB_SSLKEY": f.key}, "SSLCert", "holds no PEM certificate"},
		{"key missing", map[string]string{"DB_SSLCERT": f.cert, "DB_SSLKEY": missing}, "SSLKey", "file does not exist"},
		{"cert without key", map[string]string{"DB_SSLCERT": f.cert}, "SSLKey", "SSLCert needs its private key"},
		{"key without cert", map[string]string{"DB_SSLKEY": f.key}, "SSLCert", "SSLKey needs its certificate"},
		{"sslmode disable", map[string]string{"DB_SSLMODE": "disable", "DB_SSLROOTCERT": f.ca}, "SSLRootCert", `SSLMode is "disable"`},
		{"system roots without verify-full", map[string]string{"DB_SSLMODE": "require", "DB_SSLROOTCERT": "system"}, "SSLRootCert", `needs SSLMode "verify-full"`},
		{"mysql with disable", map[string]string{"DB_DRIVER": "mysql", "DB_SSLMODE": "disable", "DB_SSLROOTCERT": f.ca}, "SSLRootCert", "certificates need TLS"},
		{"sqlite", map[string]string{"DB_DRIVER": "sqlite", "DB_NAME": "x.db", "DB_SSLCERT": f.cert, "DB_SSLKEY": f.key}, "SSLCert", "PostgreSQL, MySQL and MariaDB only"},
		{"with a DSN", map[string]string{"DB_DSN": "postgres://u@h/d", "DB_SSLROOTCERT": f.ca}, "SSLRootCert", "put sslrootcert in the DSN"},
		{"also in Params", map[string]string{"DB_PARAMS": "sslrootcert=" + f.ca, "DB_SSLROOTCERT": f.ca}, "SSLRootCert", "also set in Params"},
		{"lib/pq and a key others can read", map[string]string{"DB_SSLCERT": f.cert, "DB_SSLKEY": f.openKey}, "SSLKey", "chmod 0600"},
		{"lib/pq and a fake key", map[string]string{"DB_SSLCERT": f.cert, "DB_SSLKEY": f.fakeKey}, "SSLKey", "(mode 0644)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearDBEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := dbm.LoadConfig()
			var ce *dbm.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, dbm.ErrConfig) {
				t.Fatalf("LoadConfig: err = %v, want a *ConfigError", err)
			}
			msg := err.Error()
			wantVar := "DB_" + strings.ToUpper(tc.field) // DB_SSLROOTCERT, DB_SSLCERT, DB_SSLKEY
			if ce.Field != tc.field || !strings.Contains(msg, tc.field+" ("+wantVar+")") || !strings.Contains(msg, tc.reason) {
				t.Errorf("err = %q (field %s), want field %s, its variable, and %q", msg, ce.Field, tc.field, tc.reason)
			}
			if strings.Contains(msg, keyMaterial) || strings.Contains(fmt.Sprintf("%+v", err), keyMaterial) {
				t.Errorf("err shows the key's contents: %q", msg)
			}
			cfg := dbm.Config{Driver: tc.env["DB_DRIVER"], DSN: tc.env["DB_DSN"], Database: tc.env["DB_NAME"], SSLMode: tc.env["DB_SSLMODE"],
				SSLRootCert: tc.env["DB_SSLROOTCERT"], SSLCert: tc.env["DB_SSLCERT"], SSLKey: tc.env["DB_SSLKEY"]}
			if p, ok := tc.env["DB_PARAMS"]; ok {
				k, v, _ := strings.Cut(p, "=")
				cfg.Params = map[string]string{k: v}
			}
			if _, err := dbm.New(context.Background(), cfg); err == nil || err.Error() != msg {
				t.Errorf("New: err = %v, want the same error as LoadConfig", err)
			}
		})
	}
}

// TestCertificateConfigAccepted covers the settings that are valid,
// including the ones a stricter rule might wrongly refuse.
func TestCertificateConfigAccepted(t *testing.T) {
	f := newCertFiles(t)
	tests := map[string]map[string]string{
		"CA only":                         {"DB_SSLROOTCERT": f.ca},
		"CA and client certificate":       {"DB_SSLROOTCERT": f.ca, "DB_SSLCERT": f.cert, "DB_SSLKEY": f.key, "DB_SSLMODE": "verify-ca"},
		"client certificate, require":     {"DB_SSLCERT": f.cert, "DB_SSLKEY": f.key, "DB_SSLMODE": "require"},
		"system roots":                    {"DB_SSLROOTCERT": "system"},
		"system roots, verify-full":       {"DB_SSLROOTCERT": "system", "DB_SSLMODE": "verify-full"},
		"pgx takes a key others can read": {"DB_DRIVER": "pgx", "DB_SSLCERT": f.cert, "DB_SSLKEY": f.openKey},
		"verify-full without a CA":        {"DB_SSLMODE": "verify-full"},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			clearDBEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			if _, err := dbm.LoadConfig(); err != nil {
				t.Errorf("LoadConfig: %v", err)
			}
		})
	}
}

// TestNewWarnsAboutUnverifiedServers checks the warning New logs when it
// connects to a PostgreSQL server on another machine without checking the
// server's certificate, and that it is silent when the traffic stays on
// this machine or the certificate is checked. The context is canceled, so
// nothing is dialled.
func TestNewWarnsAboutUnverifiedServers(t *testing.T) {
	f := newCertFiles(t)
	tests := []struct {
		name string
		cfg  dbm.Config
		warn bool
	}{
		{"remote, default sslmode", dbm.Config{Host: "db.example.com"}, true},
		{"remote, require", dbm.Config{Host: "10.1.2.3", SSLMode: "require"}, true},
		{"remote, disable", dbm.Config{Host: "db.example.com", SSLMode: "disable"}, true},
		{"remote, verify-full", dbm.Config{Host: "db.example.com", SSLMode: "verify-full"}, false},
		{"remote, verify-ca", dbm.Config{Host: "db.example.com", SSLMode: "verify-ca"}, false},
		{"remote, CA given (default verify-full)", dbm.Config{Host: "db.example.com", SSLRootCert: f.ca}, false},
		{"localhost", dbm.Config{}, false},
		{"127.0.0.2", dbm.Config{Host: "127.0.0.2", SSLMode: "prefer"}, false},
		{"::1", dbm.Config{Host: "::1", SSLMode: "disable"}, false},
		{"Unix socket", dbm.Config{Host: "/var/run/postgresql"}, false},
		{"a DSN is not judged", dbm.Config{DSN: "postgres://u@db.example.com/d?sslmode=disable"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			tc.cfg.User, tc.cfg.Database = "app", "app"
			if _, err := dbm.New(ctx, tc.cfg, dbm.WithLogger(logger)); err == nil {
				t.Fatal("New connected with a canceled context")
			}
			warned := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "not verified")
			if warned != tc.warn {
				t.Errorf("warned = %v, want %v; log:\n%s", warned, tc.warn, buf.String())
			}
			if warned && !strings.Contains(buf.String(), "DB_SSLMODE=verify-full") {
				t.Errorf("the warning does not say how to fix it:\n%s", buf.String())
			}
		})
	}
}
