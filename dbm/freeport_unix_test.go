//go:build unix

package dbm_test

import (
	"syscall"
	"testing"
)

// freePort returns a loopback port with nothing listening on it, for the
// rest of the test: a socket bound to it, never listening, keeps other
// listeners (a parallel test's proxy, which may accept and never answer)
// off it, and a connection to it is refused at once.
func freePort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
