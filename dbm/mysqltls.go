package dbm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"sync"
)

// This file maps Config.SSLMode and the certificate fields onto
// go-sql-driver/mysql's "tls" parameter. The plain modes are words the
// driver knows; a mode that needs certificate files needs a tls.Config
// registered with the driver under a name, which only code importing the
// driver can do: package dbm/dbmmysql registers its function here.

// mysqlTLSRegistrar is the driver's mysql.RegisterTLSConfig, given by
// [RegisterMySQLTLS]; nil until dbm/dbmmysql is imported.
var mysqlTLSRegistrar struct {
	mu       sync.Mutex
	register func(name string, cfg *tls.Config) error
}

// RegisterMySQLTLS is called by package dbm/dbmmysql, which imports
// go-sql-driver/mysql, with that driver's RegisterTLSConfig: with it, New
// can give the driver the tls.Config that Config.SSLMode "verify-ca" or
// "verify-full" with SSLRootCert, SSLCert and SSLKey describe. Applications
// import dbm/dbmmysql rather than call this.
func RegisterMySQLTLS(register func(name string, cfg *tls.Config) error) {
	mysqlTLSRegistrar.mu.Lock()
	defer mysqlTLSRegistrar.mu.Unlock()
	mysqlTLSRegistrar.register = register
}

// mysqlTLSParam is the driver's tls parameter for c ("" to leave the
// driver's default), like libpq's modes:
//
//	disable            false        plain text
//	allow, prefer      preferred    TLS when the server offers it, unverified
//	require            skip-verify  TLS, server not verified
//	verify-full        true         TLS, server verified against the system's CAs and by host name
//
// With certificate files, or with verify-ca, it is the name of a tls.Config
// that New registers (see mysqlTLSConfig).
func mysqlTLSParam(c Config) string {
	if c.Driver != DriverMySQL || c.DSN != "" {
		return ""
	}
	if c.hasTLSFiles() || c.SSLMode == "verify-ca" {
		return mysqlTLSName(c)
	}
	switch c.SSLMode {
	case "disable":
		return "false"
	case "allow", "prefer":
		return "preferred"
	case "require":
		return "skip-verify"
	case "verify-full":
		return "true"
	}
	return ""
}

// mysqlTLSName names the tls.Config of c: the same settings, the same name.
func mysqlTLSName(c Config) string {
	h := sha256.Sum256([]byte(c.SSLMode + "\x00" + c.Host + "\x00" + c.SSLRootCert + "\x00" + c.SSLCert + "\x00" + c.SSLKey))
	return "dbm-" + hex.EncodeToString(h[:8])
}

// registerMySQLTLS gives the driver the tls.Config of c when its tls
// parameter names one.
func registerMySQLTLS(c Config) error {
	if c.Driver != DriverMySQL || mysqlTLSParam(c) != mysqlTLSName(c) {
		return nil
	}
	mysqlTLSRegistrar.mu.Lock()
	register := mysqlTLSRegistrar.register
	mysqlTLSRegistrar.mu.Unlock()
	if register == nil {
		return configErr("SSLMode", `with certificate files or "verify-ca", MySQL needs import _ "github.com/dbmanager-go/dbmanager/dbm/dbmmysql" (it registers the TLS settings with the driver)`, c.SSLMode)
	}
	cfg, err := mysqlTLSConfig(c)
	if err != nil {
		return err
	}
	if err := register(mysqlTLSName(c), cfg); err != nil {
		return configErr("SSLMode", "the driver refused the TLS settings", c.SSLMode)
	}
	return nil
}

// mysqlTLSConfig builds the tls.Config for c: the CAs of SSLRootCert (the
// system's when empty or "system"), the client certificate of SSLCert and
// SSLKey, and the checks of the mode as libpq makes them: verify-full
// checks the chain and the host name, verify-ca (and require with a CA
// file, as libpq does) the chain only, other modes nothing.
func mysqlTLSConfig(c Config) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var roots *x509.CertPool
	if c.SSLRootCert != "" && c.SSLRootCert != sslRootCertSystem {
		pem, err := os.ReadFile(c.SSLRootCert)
		if err != nil {
			return nil, configErr("SSLRootCert", "cannot be read", c.SSLRootCert)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, configErr("SSLRootCert", "holds no PEM certificate", c.SSLRootCert)
		}
	}
	if c.SSLCert != "" {
		pair, err := tls.LoadX509KeyPair(c.SSLCert, c.SSLKey)
		if err != nil {
			return nil, configErr("SSLCert", "certificate and key do not load as a pair", c.SSLCert)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	switch {
	case c.SSLMode == "verify-full":
		cfg.RootCAs, cfg.ServerName = roots, c.Host
	case c.SSLMode == "verify-ca" || c.SSLMode == "require" && roots != nil:
		// The chain is checked, the name is not: crypto/tls can only skip
		// both, so the chain is checked here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots)
		}
	default:
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

// verifyChain checks that the certificates the server sent chain to roots
// (the system's when nil), whatever name they carry.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("dbm: the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return err
		}
		certs[i] = cert
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}
