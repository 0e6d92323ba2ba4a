package drivertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// holdsString reports whether v, followed through pointers, structs,
// slices, maps and interfaces, holds a string containing s.
func holdsString(v reflect.Value, s string, depth int) bool {
	if depth > 12 || !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.String:
		return strings.Contains(v.String(), s)
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && holdsString(v.Elem(), s, depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if holdsString(v.Field(i), s, depth+1) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range min(v.Len(), 64) {
			if holdsString(v.Index(i), s, depth+1) {
				return true
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if holdsString(v.MapIndex(k), s, depth+1) {
				return true
			}
		}
	}
	return false
}

// pgx's *pgconn.ConnectError carries the whole connection config, password
// included, in a field: no text check can see it, so the manager must not
// hand that error out.
func TestPgxConnectErrorsHoldNoPassword(t *testing.T) {
	const secret = "Wq4-connect-secret"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, cfg := range []dbm.Config{
		{Driver: dbm.DriverPgx, Host: "127.0.0.1", Port: port, User: "u", Password: secret, Database: "d", SSLMode: "disable"},
		{Driver: dbm.DriverPgx, DSN: fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/d?sslmode=disable", secret, port)},
		{Driver: dbm.DriverPgx, DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=u password=%s sslmode=bogus", port, secret)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := dbm.New(ctx, cfg)
		cancel()
		if err == nil {
			t.Fatal("New succeeded against a closed port")
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), secret) || holdsString(reflect.ValueOf(e), secret, 0) {
				t.Errorf("%v: the error chain holds the password in %T", cfg, e)
			}
		}
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			t.Errorf("*pgconn.ConnectError (with its Config) is reachable: %v", err)
		}
		if out := fmt.Sprintf("%+v %#v", err, err); strings.Contains(out, secret) {
			t.Errorf("fmt of the error shows the password: %s", out)
		}
	}
}
