//go:build !amd64 && !arm64

package fpstack

import "runtime"

// Callers fills pcs with the return addresses of the frames above the caller
// of Callers, skipping skip of them, and returns how many it wrote.
func Callers(skip int, pcs []uintptr) int {
	// Skip runtime.Callers, Callers and its caller.
	return runtime.Callers(skip+3, pcs)
}
