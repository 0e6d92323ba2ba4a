package faultproxy

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// drain waits, for at most wait, until the kernel has handed everything
// written to c to the peer (TIOCOUTQ is 0), so that a reset that follows
// does not throw away bytes the peer's window had no room for yet.
func drain(c net.Conn, wait time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var n int32
		var errno syscall.Errno
		if raw.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
		}) != nil || errno != 0 || n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
