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
