package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bigReply is how many bytes the echo server sends for the line "big".
const bigReply = 1 << 20

// echoServer answers each line with "ok <line>" (the line "big" with
// bigReply bytes of 'x' and a newline) and sends every line it got on the
// returned channel.
func echoServer(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
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
					lines <- strings.TrimSpace(line)
					reply := "ok " + line
					if line == "big\n" {
						reply = strings.Repeat("x", bigReply) + "\n"
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), lines
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// client is a line-based connection through the proxy.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *client {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one line, waiting at most wait.
func (c *client) recv(wait time.Duration) (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(wait))
	return c.r.ReadString('\n')
}

// roundTrip sends line and returns the answer (which must come within 10s).
func (c *client) roundTrip(line string) string {
	c.t.Helper()
	c.send(line)
	got, err := c.recv(10 * time.Second)
	if err != nil {
		c.t.Fatalf("answer to %q: %v", line, err)
	}
	return got
}

func TestForwardsAndDropsReply(t *testing.T) {
	addr, got := echoServer(t)
	p := startProxy(t, addr)
	p.DropReply([]byte("write"), 1)

	c := dial(t, p)
	if line := c.roundTrip("read"); line != "ok read\n" {
		t.Fatalf("plain forward: %q", line)
	}
	c.send("write")
	if line, err := c.recv(10 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reply to the armed message: %q, %v; want the connection closed", line, err)
	}
	// The server did get the statement whose reply was lost.
	if a, b := <-got, <-got; a != "read" || b != "write" {
		t.Errorf("server saw %q, %q; want read, write", a, b)
	}
	if s := p.Stats(); s.Cuts != 1 || s.Accepted != 1 {
		t.Errorf("Stats = %+v, want 1 accepted, 1 cut", s)
	}

	// The rule was used up: a new connection passes "write" through.
	if line := dial(t, p).roundTrip("write"); line != "ok write\n" {
		t.Fatalf("after the rule: %q", line)
	}
}

func TestResetAfter(t *testing.T) {
	addr, got := echoServer(t)
	p := startProxy(t, addr)
	const after = 100_000 // several of the proxy's reads into the reply
	p.ResetAfter([]byte("big"), after, 1)

	c := dial(t, p)
	if line := c.roundTrip("small"); line != "ok small\n" {
		t.Fatalf("plain forward: %q", line)
	}
	c.send("big")
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c.r)
	if n != after || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read %d bytes of the reply, then %v; want %d bytes, then ECONNRESET", n, err, after)
	}
	if a, b := <-got, <-got; a != "small" || b != "big" {
		t.Errorf("server saw %q, %q; want small, big", a, b)
	}
	if s := p.Stats(); s.Cuts != 1 || s.Open != 0 {
		t.Errorf("Stats = %+v, want 1 cut, none open", s)
	}

	// Used up: the whole reply comes through now.
	if line := dial(t, p).roundTrip("big"); len(line) != bigReply+1 {
		t.Errorf("after the rule: a reply of %d bytes, want %d", len(line), bigReply+1)
	}
}

func TestResetBeforeAnyByte(t *testing.T) {
	addr, _ := echoServer(t)
	p := startProxy(t, addr)
	p.ResetAfter([]byte("hello"), 0, 1)
	c := dial(t, p)
	c.send("hello")
	line, err := c.recv(10 * time.Second)
	if line != "" || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("got %q, %v; want nothing, then ECONNRESET", line, err)
	}
}

// connected returns a proxy in front of an echo server and a client
// connection through it that has made one round trip.
func connected(t *testing.T) (*Proxy, *client, <-chan string) {
	addr, got := echoServer(t)
	p := startProxy(t, addr)
	c := dial(t, p)
	if line := c.roundTrip("before"); line != "ok before\n" {
		t.Fatalf("plain forward: %q", line)
	}
	<-got
	return p, c, got
}

func TestLatency(t *testing.T) {
	p, c, _ := connected(t)

	// Set at run time, on an open connection, each way.
	const d = 150 * time.Millisecond
	for _, tc := range []struct {
		name string
		dir  Direction
		want time.Duration
	}{
		{"to server", ToServer, d},
		{"to client", ToClient, d},
		{"both", Both, 2 * d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.SetLatency(Both, 0)
			p.SetLatency(tc.dir, d)
			start := time.Now()
			if line := c.roundTrip(tc.name); line != "ok "+tc.name+"\n" {
				t.Fatalf("answer %q", line)
			}
			if took := time.Since(start); took < tc.want {
				t.Errorf("round trip took %v, want at least %v", took, tc.want)
			}
		})
	}

	// The delay is per chunk but chunks do not wait for each other: a reply
	// of 32 reads or more is late by d, not by 32*d.
	p.SetLatency(Both, 0)
	p.SetLatency(ToClient, d)
	start := time.Now()
	if line := c.roundTrip("big"); len(line) != bigReply+1 {
		t.Fatalf("big reply of %d bytes", len(line))
	}
	if took := time.Since(start); took < d || took > 16*d {
		t.Errorf("a %d byte reply took %v with %v latency; want between %v and %v (not a delay per chunk)", bigReply, took, d, d, 16*d)
	}

	// Switched off, the answer is not held back: it arrives while a
	// latency of a minute would still hold it.
	p.SetLatency(Both, time.Minute)
	p.SetLatency(Both, 0)
	c.send("after")
	if line, err := c.recv(30 * time.Second); line != "ok after\n" {
		t.Errorf("after the latency was removed: %q, %v", line, err)
	}
}

func TestBlackHole(t *testing.T) {
	p, c, got := connected(t)

	t.Run("to client", func(t *testing.T) {
		p.SetBlackHole(ToClient)
		c.send("one")
		if line := <-got; line != "one" { // the server gets it ...
			t.Fatalf("server got %q", line)
		}
		// ... but its answer does not come, and the connection stays open.
		if line, err := c.recv(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("through the black hole: %q, %v; want no answer (a read timeout)", line, err)
		}
		p.SetBlackHole(0) // the held answer comes, in order
		if line, err := c.recv(10 * time.Second); line != "ok one\n" {
			t.Fatalf("after the hole closed: %q, %v", line, err)
		}
	})

	t.Run("to server", func(t *testing.T) {
		p.SetBlackHole(ToServer)
		c.send("two")
		if line, err := c.recv(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("through the black hole: %q, %v; want no answer", line, err)
		}
		select {
		case line := <-got:
			t.Fatalf("the server got %q through the black hole", line)
		default:
		}
		p.SetBlackHole(0)
		if line, err := c.recv(10 * time.Second); line != "ok two\n" {
			t.Fatalf("after the hole closed: %q, %v", line, err)
		}
		<-got
	})

	t.Run("new connections", func(t *testing.T) {
		p.SetBlackHole(Both)
		c2 := dial(t, p) // accepted ...
		c2.send("three")
		if line, err := c2.recv(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("new connection through the black hole: %q, %v; want no answer", line, err)
		}
		if s := p.Stats(); s.Open != 2 {
			t.Errorf("Stats().Open = %d, want 2 (nothing is closed)", s.Open)
		}
		// A client's hang-up is held too, and Close ends it all.
		c2.c.Close()
	})
}

// TestCloseEndsEverything: Close returns while connections are held in a
// black hole and delayed by latency, and leaves no goroutine behind
// (TestMain's goleak).
func TestCloseEndsEverything(t *testing.T) {
	addr, _ := echoServer(t)
	p, err := Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, p), dial(t, p)
	a.roundTrip("a")
	b.roundTrip("b")
	p.SetBlackHole(ToClient)
	a.send("held")
	p.SetLatency(ToServer, time.Hour)
	b.send("late")
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs")
	}
	for _, c := range []*client{a, b} {
		if _, err := c.recv(10 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client connection after Close: %v, want it closed", err)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts after Close")
	}
}

// TestDropRequest: the armed message never reaches the server, and the
// client's connection is closed.
func TestDropRequest(t *testing.T) {
	addr, got := echoServer(t)
	p := startProxy(t, addr)
	p.DropRequest([]byte("commit"), 1)

	c := dial(t, p)
	if line := c.roundTrip("read"); line != "ok read\n" {
		t.Fatalf("plain forward: %q", line)
	}
	c.send("commit")
	c.wantClosed("the reply to the dropped message")
	if a := <-got; a != "read" {
		t.Fatalf("server saw %q first, want read", a)
	}
	// The rule was used up: a new connection passes "commit" through, and
	// it is the first "commit" the server sees.
	if line := dial(t, p).roundTrip("commit"); line != "ok commit\n" {
		t.Fatalf("after the rule: %q", line)
	}
	if a := <-got; a != "commit" {
		t.Errorf("server saw %q, want the second connection's commit", a)
	}
	select {
	case extra := <-got:
		t.Errorf("server saw %q as well: the dropped message reached it", extra)
	default:
	}
	if s := p.Stats(); s.Cuts != 1 || s.Accepted != 2 {
		t.Errorf("Stats = %+v, want 2 accepted, 1 cut", s)
	}
}

// TestRefuseNew: new connections are closed at once; open ones go on.
func TestRefuseNew(t *testing.T) {
	addr, _ := echoServer(t)
	p := startProxy(t, addr)
	open := dial(t, p)
	open.roundTrip("before")
	p.RefuseNew(true)
	dial(t, p).wantClosed("a new connection")
	if line := open.roundTrip("still"); line != "ok still\n" {
		t.Fatalf("the open connection: %q", line)
	}
	p.RefuseNew(false)
	if line := dial(t, p).roundTrip("again"); line != "ok again\n" {
		t.Fatalf("after RefuseNew(false): %q", line)
	}
}

// TestHoldRequest: the armed message never reaches the server and the
// client's connection is closed, but the server's side stays open until
// the proxy closes.
func TestHoldRequest(t *testing.T) {
	addr, got := echoServer(t)
	p := startProxy(t, addr)
	p.HoldRequest([]byte("commit"), 1)
	c := dial(t, p)
	c.roundTrip("read")
	<-got
	c.send("commit")
	c.wantClosed("the reply to the held message")
	if s := p.Stats(); s.Open != 1 || s.Cuts != 1 {
		t.Errorf("Stats = %+v, want the link still open (the server's side), 1 cut", s)
	}
	select {
	case line := <-got:
		t.Errorf("server saw %q: the held message reached it", line)
	default:
	}
}

// wantClosed fails the test unless the proxy closed the connection (what
// names what was expected instead of an answer).
func (c *client) wantClosed(what string) {
	c.t.Helper()
	if line, err := c.recv(10 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("%s: %q, %v; want the connection closed", what, line, err)
	}
}
