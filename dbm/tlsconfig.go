package dbm

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// This file holds the TLS settings of a PostgreSQL connection: the
// certificate fields of Config, their validation, and how the manager tells
// a certificate failure from a server that is not answering yet.

// sslModeWithFiles is the default SSLMode when a certificate file is
// configured: a CA is only useful to verify the server, and a client
// certificate only over TLS.
const sslModeWithFiles = "verify-full"

// sslRootCertSystem is the SSLRootCert value, understood by lib/pq and pgx,
// that selects the operating system's certificate authorities.
const sslRootCertSystem = "system"

// maxPEMSize bounds how much of a certificate file is read to check it; a
// large system bundle is a few hundred KiB.
const maxPEMSize = 16 << 20

// tlsFile is one certificate field of Config.
type tlsFile struct {
	field string // the Config field, e.g. "SSLRootCert"
	param string // the libpq parameter, e.g. "sslrootcert"
	path  string
}

func (c Config) tlsFiles() []tlsFile {
	return []tlsFile{
		{"SSLRootCert", "sslrootcert", c.SSLRootCert},
		{"SSLCert", "sslcert", c.SSLCert},
		{"SSLKey", "sslkey", c.SSLKey},
	}
}

// hasTLSFiles reports whether any certificate field is set.
func (c Config) hasTLSFiles() bool {
	return c.SSLRootCert != "" || c.SSLCert != "" || c.SSLKey != ""
}

// validateTLS checks the certificate fields of a Config that has its
// defaults applied. The files are checked here, when the configuration is
// loaded, so that a wrong path is a clear [ConfigError] rather than a
// driver's message at the first connection. The private key is opened to
// see that it can be read, never read.
func (c Config) validateTLS() error {
	if !c.hasTLSFiles() {
		return nil
	}
	var first tlsFile
	for _, f := range c.tlsFiles() {
		if f.path != "" {
			first = f
			break
		}
	}
	switch {
	case c.DSN != "":
		return configErr(first.field, "not used when DSN is set (put "+first.param+" in the DSN instead)", first.path)
	case !isPostgres(c.Driver) && c.Driver != DriverMySQL:
		return configErr(first.field, "applies to PostgreSQL, MySQL and MariaDB only", first.path)
	case c.SSLMode == "disable":
		return configErr(first.field, `set, but SSLMode is "disable": certificates need TLS (use verify-full)`, first.path)
	case c.SSLCert != "" && c.SSLKey == "":
		return configErr("SSLKey", "missing: SSLCert needs its private key", nil)
	case c.SSLKey != "" && c.SSLCert == "":
		return configErr("SSLCert", "missing: SSLKey needs its certificate", nil)
	case c.SSLRootCert == sslRootCertSystem && c.SSLMode != "verify-full":
		return configErr("SSLRootCert", `"system" needs SSLMode "verify-full": anyone can get a certificate from a public authority, so the host name must be checked`, c.SSLRootCert)
	}
	for _, f := range c.tlsFiles() {
		if _, dup := c.Params[f.param]; dup && f.path != "" {
			return configErr(f.field, "also set in Params["+f.param+"]; set one of them", f.path)
		}
	}
	if c.SSLRootCert != sslRootCertSystem {
		if err := checkCertFile("SSLRootCert", c.SSLRootCert); err != nil {
			return err
		}
	}
	if err := checkCertFile("SSLCert", c.SSLCert); err != nil {
		return err
	}
	return checkKeyFile(c.Driver, c.SSLKey)
}

// openTLSFile opens a certificate or key file, or says why it cannot.
func openTLSFile(field, path string) (*os.File, fs.FileInfo, error) {
	fail := func(reason string, err error) (*os.File, fs.FileInfo, error) {
		e := configErr(field, reason, path)
		e.Err = err
		return nil, nil, e
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("file does not exist", err)
	case errors.Is(err, fs.ErrPermission):
		return fail("permission denied: this program cannot read the file", err)
	case err != nil:
		return fail("cannot open the file", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		_ = f.Close()
		return fail("not a readable file (want a PEM file)", err)
	}
	return f, fi, nil
}

// checkCertFile checks that path, if set, holds at least one PEM
// certificate. Certificates are public; reading them is safe.
func checkCertFile(field, path string) error {
	if path == "" {
		return nil
	}
	f, _, err := openTLSFile(field, path)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMSize))
	_ = f.Close()
	if err != nil {
		e := configErr(field, "cannot read the file", path)
		e.Err = err
		return e
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return configErr(field, `holds no PEM certificate (want "-----BEGIN CERTIFICATE-----")`, path)
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err == nil {
				return nil
			}
		}
	}
}

// checkKeyFile checks that the private key file, if set, can be opened, and
// for lib/pq that its permissions are ones lib/pq accepts. Its contents are
// not read: they are the secret.
func checkKeyFile(driver, path string) error {
	if path == "" {
		return nil
	}
	f, fi, err := openTLSFile("SSLKey", path)
	if err != nil {
		return err
	}
	_ = f.Close()
	if driver == DriverPostgres {
		if problem := keyPermissionProblem(fi); problem != "" {
			return configErr("SSLKey", problem, path)
		}
	}
	return nil
}

// isLocalHost reports whether host is this machine: a Unix socket
// directory, "localhost" or a loopback address. Traffic to it does not cross
// a network.
func isLocalHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// unverifiedRemote reports whether c connects to a PostgreSQL server on
// another machine without checking its certificate, so that someone on the
// network could pose as the server. New logs a warning then. A DSN is the
// user's own and is not judged.
func (c Config) unverifiedRemote() bool {
	if c.DSN != "" || !isPostgres(c.Driver) || isLocalHost(c.Host) {
		return false
	}
	return c.SSLMode != "verify-full" && c.SSLMode != "verify-ca"
}

// isCertificateFailure reports whether err is a TLS certificate that was
// refused, on either side: trying again cannot help, so [New] returns it at
// once instead of retrying until its timeout.
func isCertificateFailure(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		alert     tls.AlertError
	)
	if errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	return errors.As(err, &alert) && isCertificateAlert(alert)
}

// isCertificateAlert reports whether a TLS alert from the server refuses
// the client's certificate (or its absence).
func isCertificateAlert(a tls.AlertError) bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116: // bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired, certificate_unknown, unknown_ca, certificate_required
		return true
	}
	return false
}
