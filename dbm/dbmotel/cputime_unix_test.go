//go:build unix

package dbmotel_test

import "syscall"

// cpuTime returns the CPU time (user and system) the process has used, in
// nanoseconds, or -1 when it cannot be read. (bench/cputime_unix.go is the
// same, in the bench module.)
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// userTime returns the CPU time the process has used in user mode (its own
// code, not the kernel's work for its system calls), in nanoseconds, or -1
// when it cannot be read. On a loaded machine the system calls of a
// statement sent to a server cost more, and more unevenly, than on a quiet
// one; user time shows the work of the process itself, which is where a
// tracer's cost is.
func userTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano()
}
