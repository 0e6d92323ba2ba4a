package dbm

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

// SSLMode gives MySQL the driver's tls parameter of the same meaning.
func TestMySQLTLSParam(t *testing.T) {
	base := Config{Driver: DriverMySQL, Host: "db", User: "u", Database: "d"}
	for _, c := range []struct {
		mode, rootCert, want string
	}{
		{"", "", ""},
		{"disable", "", "false"},
		{"allow", "", "preferred"},
		{"prefer", "", "preferred"},
		{"require", "", "skip-verify"},
		{"verify-full", "", "true"},
		{"verify-ca", "", "dbm-"},
		{"verify-full", "/etc/ca.pem", "dbm-"},
		{"", "/etc/ca.pem", "dbm-"}, // files default the mode to verify-full
	} {
		cfg := base
		cfg.SSLMode, cfg.SSLRootCert = c.mode, c.rootCert
		cfg = cfg.withDefaults()
		got := mysqlTLSParam(cfg)
		if !strings.HasPrefix(got, c.want) || c.want == "" && got != "" {
			t.Errorf("SSLMode %q, SSLRootCert %q: tls = %q, want %q", c.mode, c.rootCert, got, c.want)
		}
		if dsn := cfg.dsn(); c.want != "" && !strings.Contains(dsn, "tls="+got) || c.want == "" && strings.Contains(dsn, "tls=") {
			t.Errorf("SSLMode %q: DSN %q does not carry tls=%q", c.mode, dsn, got)
		}
	}
	if a, b := mysqlTLSName(Config{SSLMode: "verify-ca", Host: "a"}), mysqlTLSName(Config{SSLMode: "verify-ca", Host: "b"}); a == b {
		t.Errorf("two hosts share the TLS config name %q", a)
	}
}

func TestMySQLTLSValidation(t *testing.T) {
	err := Config{Driver: DriverMySQL, Host: "db", SSLMode: "require", Params: map[string]string{"tls": "true"}}.withDefaults().validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "SSLMode" {
		t.Errorf("SSLMode with Params[tls]: %v; want a ConfigError on SSLMode", err)
	}
	if err := (Config{Driver: DriverMySQL, Host: "db", SSLMode: "verify-none"}).withDefaults().validate(); !errors.As(err, &ce) || ce.Field != "SSLMode" {
		t.Errorf("unknown mode: %v", err)
	}
	// Without dbm/dbmmysql imported (this test binary does not import it),
	// a mode that needs a registered tls.Config says what to import.
	RegisterMySQLTLS(nil)
	err = registerMySQLTLS(Config{Driver: DriverMySQL, Host: "db", SSLMode: "verify-ca"})
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "dbm/dbmmysql") {
		t.Errorf("verify-ca without dbmmysql: %v; want a ConfigError naming dbm/dbmmysql", err)
	}
	var name string
	RegisterMySQLTLS(func(n string, _ *tls.Config) error { name = n; return nil })
	defer RegisterMySQLTLS(nil)
	if err := registerMySQLTLS(Config{Driver: DriverMySQL, Host: "db", SSLMode: "verify-ca"}); err != nil || !strings.HasPrefix(name, "dbm-") {
		t.Errorf("verify-ca with a registrar: %v, registered %q", err, name)
	}
}
