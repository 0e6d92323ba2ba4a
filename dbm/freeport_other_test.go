//go:build !unix

package dbm_test

import (
	"net"
	"testing"
)

// freePort returns a loopback port with nothing listening on it (it was
// free a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
