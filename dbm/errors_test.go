package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
)

// stateErr is a driver error exposing SQLState, as lib/pq and pgx do.
type stateErr struct{ code, msg string }

func (e *stateErr) Error() string    { return e.msg }
func (e *stateErr) SQLState() string { return e.code }

func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want Class
	}{
		{"nil", nil, nil, ClassUnknown},
		{"no rows", nil, sql.ErrNoRows, ClassNotFound},
		{"wrapped no rows", nil, fmt.Errorf("x: %w", sql.ErrNoRows), ClassNotFound},
		{"unique", nil, &stateErr{"23505", "dup"}, ClassUniqueViolation},
		{"exclusion", nil, &stateErr{"23P01", "excl"}, ClassUniqueViolation},
		{"fk", nil, &stateErr{"23503", ""}, ClassForeignKeyViolation},
		{"not null", nil, &stateErr{"23502", ""}, ClassNotNullViolation},
		{"check", nil, &stateErr{"23514", ""}, ClassCheckViolation},
		{"serialization", nil, &stateErr{"40001", ""}, ClassSerialization},
		{"deadlock", nil, &stateErr{"40P01", ""}, ClassDeadlock},
		{"lock timeout", nil, &stateErr{"55P03", ""}, ClassLockTimeout},
		{"statement timeout", nil, &stateErr{"57014", ""}, ClassTimeout},
		{"canceled by caller", canceled, &stateErr{"57014", ""}, ClassCanceled},
		{"too many", nil, &stateErr{"53300", ""}, ClassTooManyConnections},
		{"admin shutdown", nil, &stateErr{"57P01", ""}, ClassConnection},
		{"starting up", nil, &stateErr{"57P03", ""}, ClassConnection},
		{"class 08", nil, &stateErr{"08006", ""}, ClassConnection},
		{"read only", nil, &stateErr{"25006", ""}, ClassReadOnly},
		{"syntax", nil, &stateErr{"42601", ""}, ClassSyntax},
		{"undefined table", nil, &stateErr{"42P01", ""}, ClassUndefinedObject},
		{"undefined column", nil, &stateErr{"42703", ""}, ClassUndefinedObject},
		{"undefined function", nil, &stateErr{"42883", ""}, ClassUndefinedObject},
		{"privilege", nil, &stateErr{"42501", ""}, ClassPermission},
		{"auth", nil, &stateErr{"28P01", ""}, ClassPermission},
		{"division by zero", nil, &stateErr{"22012", ""}, ClassDataException},
		{"other state", nil, &stateErr{"XX000", ""}, ClassUnknown},
		{"deadline", nil, context.DeadlineExceeded, ClassTimeout},
		{"canceled", nil, context.Canceled, ClassCanceled},
		{"caller canceled", canceled, errors.New("driver: interrupted"), ClassCanceled},
		{"bad conn", nil, driver.ErrBadConn, ClassConnection},
		{"eof", nil, io.EOF, ClassConnection},
		{"unexpected eof", nil, io.ErrUnexpectedEOF, ClassConnection},
		{"refused", nil, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ClassConnection},
		{"reset", nil, syscall.ECONNRESET, ClassConnection},
		{"pipe", nil, syscall.EPIPE, ClassConnection},
		{"net timeout", nil, &net.DNSError{IsTimeout: true}, ClassTimeout},
		{"unknown", nil, errors.New("boom"), ClassUnknown},
		{"malformed DSN", nil, &url.Error{Op: "parse", URL: "postgres://x", Err: errors.New("invalid character")}, ClassConfig},
		{"already classified", nil, &Error{Class: ClassDeadlock, Err: errors.New("x")}, ClassDeadlock},
		{"config", nil, &ConfigError{Field: "Port"}, ClassConfig},
		{"argument", nil, &ArgumentError{}, ClassInvalidArgument},
		{"scan", nil, &ScanError{Err: ErrNullValue}, ClassScan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.err)
			if tc.ctx != nil {
				got, _ = classify(tc.ctx, tc.err)
			}
			if got != tc.want {
				t.Errorf("class = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorMatchesSentinelAndKeepsCause(t *testing.T) {
	cause := &stateErr{"23505", "duplicate key value violates unique constraint"}
	err := error(&Error{Class: ClassUniqueViolation, Code: "23505", Op: "exec", Query: "INSERT INTO t VALUES ($1)", Err: cause})
	if !errors.Is(err, ErrUniqueViolation) || errors.Is(err, ErrDeadlock) {
		t.Errorf("errors.Is mismatch for %v", err)
	}
	var se *stateErr
	if !errors.As(err, &se) || se != cause {
		t.Error("driver error not reachable with errors.As")
	}
	want := "dbm: exec: unique_violation: duplicate key value violates unique constraint [statement: INSERT INTO t VALUES ($1)]"
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant %q", err.Error(), want)
	}
	nf := &Error{Class: ClassNotFound, Op: "query", Err: sql.ErrNoRows}
	if !errors.Is(nf, ErrNotFound) || !errors.Is(nf, sql.ErrNoRows) {
		t.Error("not found must match ErrNotFound and sql.ErrNoRows")
	}
	conn := &Error{Class: ClassPermission, Op: "connect", Err: errors.New("auth failed")}
	if !errors.Is(conn, ErrConnection) || !errors.Is(conn, ErrPermission) {
		t.Error("a connect error must match ErrConnection and its own class")
	}
}

func TestClassNamesAndSentinels(t *testing.T) {
	seen := map[string]bool{}
	for c := range numClasses {
		name := c.String()
		if name == "" || seen[name] {
			t.Errorf("class %d has empty or duplicate name %q", c, name)
		}
		seen[name] = true
		if s := c.Sentinel(); s != nil && Classify(&Error{Class: c, Err: s}) != c {
			t.Errorf("class %v does not round-trip", c)
		}
	}
	if Class(200).String() != "unknown" {
		t.Error("out-of-range class should be unknown")
	}
	if !IsRetryable(&stateErr{"40001", ""}) || IsRetryable(&stateErr{"23505", ""}) || IsRetryable(nil) {
		t.Error("IsRetryable misjudges")
	}
}

func TestWrapWithholdsPassword(t *testing.T) {
	m := &Manager{secrets: redact.NewSecrets("hunter2")}
	err := m.wrap(context.Background(), "exec", "SELECT 'hunter2'", fmt.Errorf("driver: %w", &stateErr{"28P01", "bad password hunter2"}))
	if !errors.Is(err, ErrPermission) {
		t.Errorf("class lost when withholding: %v", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "hunter2") {
			t.Errorf("error chain shows the password: %q", e.Error())
		}
	}
}

func TestRejectedConfigurationIsNotAConnectionError(t *testing.T) {
	err := &Error{Class: ClassConfig, Op: "connect", Err: errors.New("bad sslmode")}
	if errors.Is(err, ErrConnection) || !errors.Is(err, ErrConfig) {
		t.Errorf("a configuration the driver rejected must match ErrConfig only: %v", err)
	}
}
