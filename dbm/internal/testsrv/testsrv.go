// Package testsrv holds what the packages that start throwaway servers for
// tests (pgtest, mariadbtest) share: a free port, waiting for a server to
// listen, and skipping a test without the server's binaries unless CI
// requires them; and a fake server that answers a connection or stays
// silent (FakeServer), for the tests of what a dialer sees.
package testsrv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// RequireEnv is the variable CI sets: with it, a missing server installation
// fails the test instead of skipping it.
const RequireEnv = "DBM_REQUIRE_INTEGRATION"

// SkipOrFail skips t because what is not available (err says why), or fails
// it when RequireEnv is 1, so that CI cannot pass by skipping.
func SkipOrFail(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but not available: %v", what, RequireEnv, err)
	}
	t.Skipf("SKIP: %s not available (%v); set %s=1 to make this a failure", what, err, RequireEnv)
}

// FreePort returns a 127.0.0.1 TCP port that nothing listened on a moment
// ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ExitedError is WaitListening's error when the server's process ended
// before it listened.
type ExitedError struct{ Err error } // what the process's Wait returned

func (e *ExitedError) Error() string { return fmt.Sprintf("exited (%v) before listening", e.Err) }

// WaitListening waits until addr accepts TCP connections, for at most
// timeout. exited, when not nil, delivers the server process's end: a value
// received there ends the wait with an *ExitedError. A timeout is an error
// that wraps the last dial's.
func WaitListening(addr string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case werr := <-exited:
			return &ExitedError{Err: werr}
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// IsExited reports whether err is WaitListening's *ExitedError.
func IsExited(err error) bool {
	var e *ExitedError
	return errors.As(err, &e)
}

// FakeServer listens on a free 127.0.0.1 port, accepts one connection,
// writes reply on it (nothing when reply is nil: a black hole's proxy, a
// hung server) and holds it open until the test ends. It returns the port.
func FakeServer(t testing.TB, reply []byte) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	served := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		<-served
	})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(reply)
		<-done
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
