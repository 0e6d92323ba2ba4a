package testsrv

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWaitListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := WaitListening(l.Addr().String(), time.Minute, nil); err != nil {
		t.Errorf("listening address: %v", err)
	}

	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	exited := make(chan error, 1)
	exited <- errors.New("exit status 1")
	if err := WaitListening(addr, time.Minute, exited); !IsExited(err) {
		t.Errorf("process gone: %v, want an *ExitedError", err)
	}
	if err := WaitListening(addr, 0, nil); err == nil || IsExited(err) {
		t.Errorf("nothing listening, no time: %v, want a timeout", err)
	}
}
