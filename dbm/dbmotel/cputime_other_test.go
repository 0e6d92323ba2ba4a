//go:build !unix

package dbmotel_test

// cpuTime is not available here.
func cpuTime() int64 { return -1 }

func userTime() int64 { return -1 }
