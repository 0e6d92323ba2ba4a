package faultproxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers each line with "ok <line>" and counts the lines it got.
func echoServer(t *testing.T) (addr string, got func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					mu.Lock()
					lines = append(lines, strings.TrimSpace(line))
					mu.Unlock()
					if _, err := io.WriteString(c, "ok "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}

func TestForwardsAndDropsReply(t *testing.T) {
	addr, got := echoServer(t)
	p, err := Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.DropReply([]byte("write"), 1)

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "read\n")
	if line, err := r.ReadString('\n'); err != nil || line != "ok read\n" {
		t.Fatalf("plain forward: %q, %v", line, err)
	}
	io.WriteString(c, "write\n")
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("reply to the armed message arrived: %q", line)
	}
	// The server did get the statement whose reply was lost.
	if g := got(); len(g) != 2 || g[1] != "write" {
		t.Errorf("server saw %q, want [read write]", g)
	}

	// The rule was used up: a new connection passes "write" through.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "write\n")
	if line, err := bufio.NewReader(c2).ReadString('\n'); err != nil || line != "ok write\n" {
		t.Fatalf("after the rule: %q, %v", line, err)
	}
}
