//go:build !linux

package faultproxy

import (
	"net"
	"time"
)

// drain is a no-op where TIOCOUTQ is not available: a reset may then throw
// away some of the bytes before it.
func drain(net.Conn, time.Duration) {}
