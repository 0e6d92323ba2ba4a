//go:build amd64 || arm64

package fpstack

import "unsafe"

// getfp returns the frame pointer register: the frame of its caller, as it
// is written without a frame of its own.
func getfp() unsafe.Pointer

// Callers fills pcs with the return addresses of the frames above the caller
// of Callers, skipping skip of them, and returns how many it wrote.
// pcs[0] (with skip 0) is a PC in the function that called the caller.
//
// Each frame starts with the caller's frame pointer, and the return address
// sits one word above it; the outermost frame's saved pointer is nil.
//
// It is not instrumented by the race detector: it reads only the calling
// goroutine's own stack.
//
//go:noinline
//go:norace
func Callers(skip int, pcs []uintptr) int {
	fp := getfp() // Callers' own frame; its return address is in our caller
	if fp != nil {
		fp = *(*unsafe.Pointer)(fp) // our caller's frame
	}
	for ; skip > 0 && fp != nil; skip-- {
		fp = *(*unsafe.Pointer)(fp)
	}
	i := 0
	for ; i < len(pcs) && fp != nil; i++ {
		pcs[i] = *(*uintptr)(unsafe.Add(fp, unsafe.Sizeof(uintptr(0))))
		fp = *(*unsafe.Pointer)(fp)
	}
	return i
}
