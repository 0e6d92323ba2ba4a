// Command cpuhog keeps one CPU core busy, so that tests can be run on a
// machine that something else is loading (make stress starts and stops
// it). It spins until it is killed, until -for has passed, or until the
// process that started it has gone, whichever comes first, so that a make
// interrupted before its cleanup does not leave it spinning for ever.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	limit := flag.Duration("for", time.Hour, "stop after this long")
	flag.Parse()
	if *limit <= 0 {
		fmt.Fprintf(os.Stderr, "cpuhog: -for must be positive, got %v\n", *limit)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(2) // the spinning goroutine and the watcher
	parent := os.Getppid()
	var stop atomic.Bool
	go func() {
		deadline := time.Now().Add(*limit)
		for time.Now().Before(deadline) && os.Getppid() == parent {
			time.Sleep(100 * time.Millisecond)
		}
		stop.Store(true)
	}()
	spin(&stop)
}

// spin keeps one core busy until stop is set.
func spin(stop *atomic.Bool) {
	x := uint64(1)
	for !stop.Load() {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 { // keeps the loop from being optimised away
		fmt.Println(x)
	}
}
