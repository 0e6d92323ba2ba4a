// Package fpstack records the return addresses on the calling goroutine's
// stack by following frame pointers, which costs a few nanoseconds per frame
// where [runtime.Callers] costs tens (it consults the unwind tables for every
// frame). The leak detector calls it on every Rows and Tx it tracks.
//
// Frame pointers are always maintained by the Go toolchain on amd64 and
// arm64; Go's execution tracer unwinds the same way. On other architectures
// Callers falls back to runtime.Callers.
//
// The PCs are physical return addresses, as runtime.Callers returns them;
// [runtime.CallersFrames] turns them into frames, expanding inlined calls
// except in the last PC.
package fpstack
