package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// link is one proxied connection: a client's and the server's side, and a
// reader and a writer for each direction. Readers queue what they read as
// chunks; writers pass them on when they are due and their direction is
// open, so latency and black holes never stop a reader (up to the queue's
// length, after which TCP's own flow control holds the sender back).
type link struct {
	p              *Proxy
	client, server net.Conn
	done           chan struct{} // closed by close
	once           sync.Once

	mu      sync.Mutex // protects pending
	pending *cut       // a rule that fired, waiting for the server's reply
}

// chunk is what a reader read, due to be written at due; eof marks the
// end of the reader's side.
type chunk struct {
	data []byte
	due  time.Time
	eof  bool
}

// queueLen bounds the chunks held per direction.
const queueLen = 64

// drainWait bounds the wait, before a reset, for the client to take in the
// bytes it is due: a client that does not read gets the reset anyway.
const drainWait = 2 * time.Second

func (l *link) run() {
	defer l.p.wg.Done()
	up, down := make(chan chunk, queueLen), make(chan chunk, queueLen)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); l.read(l.client, ToServer, up) }()
	go func() { defer wg.Done(); l.write(l.server, ToServer, up) }()
	go func() { defer wg.Done(); l.read(l.server, ToClient, down) }()
	l.write(l.client, ToClient, down)
	wg.Wait()
}

// read queues what arrives from one side until it ends or the link closes.
// A client message that matches a rule arms the rule's cut for the reply.
func (l *link) read(from net.Conn, dir Direction, out chan<- chunk) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			data := bytes.Clone(buf[:n])
			if dir == ToServer {
				if c := l.p.take(data); c != nil {
					if c.request {
						l.p.mu.Lock()
						l.p.cuts++
						l.p.mu.Unlock()
						if c.hold {
							_ = l.client.Close() // the server's side stays, until the link closes
							return
						}
						l.close(false)
						return
					}
					l.mu.Lock()
					l.pending = c
					l.mu.Unlock()
				}
			}
			if !l.queue(out, chunk{data: data, due: l.p.due(dir)}) {
				return
			}
		}
		if err != nil { // the side hung up (or the link closed): pass that on in turn
			l.queue(out, chunk{eof: true, due: l.p.due(dir)})
			return
		}
	}
}

func (l *link) queue(out chan<- chunk, c chunk) bool {
	select {
	case out <- c:
		return true
	case <-l.done:
		return false
	}
}

// write passes queued chunks on to one side, each when it is due and its
// direction is not black-holed, applying an armed cut to the reply.
func (l *link) write(to net.Conn, dir Direction, in <-chan chunk) {
	for {
		var c chunk
		select {
		case c = <-in:
		case <-l.done:
			return
		}
		if !l.sleepUntil(c.due) || !l.open(dir) {
			return
		}
		if c.eof {
			l.close(false)
			return
		}
		if dir == ToClient && l.cutReply(c.data) {
			return
		}
		if _, err := to.Write(c.data); err != nil {
			l.close(false)
			return
		}
	}
}

// cutReply applies a pending cut to a chunk of the server's reply and
// reports whether it ended the link.
func (l *link) cutReply(data []byte) bool {
	l.mu.Lock()
	c := l.pending
	if c != nil && c.reset && c.after >= len(data) {
		c.after -= len(data) // the cut comes in a later chunk
		c = nil
	}
	l.mu.Unlock()
	if c == nil {
		return false
	}
	if c.reset {
		_, _ = l.client.Write(data[:c.after])
		drain(l.client, drainWait)
	} // else the reply is lost whole
	l.p.mu.Lock()
	l.p.cuts++
	l.p.mu.Unlock()
	l.close(c.reset)
	return true
}

func (l *link) sleepUntil(due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// open waits until dir is not black-holed; false if the link closed first.
func (l *link) open(dir Direction) bool {
	for {
		l.p.mu.Lock()
		blocked, changed := l.p.hole&dir != 0, l.p.changed
		l.p.mu.Unlock()
		if !blocked {
			return true
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

// due is when a chunk read now in dir is to be passed on.
func (p *Proxy) due(dir Direction) time.Time {
	p.mu.Lock()
	d := p.latency[dirIndex(dir)]
	p.mu.Unlock()
	return time.Now().Add(d)
}

// close ends the link once: both sides are closed, with a TCP RST when reset
// is set, and its goroutines stop.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		l.p.mu.Lock() // first, so that Stats is up to date when the client sees the end
		delete(l.p.links, l)
		l.p.mu.Unlock()
		close(l.done)
		for _, c := range []net.Conn{l.client, l.server} {
			if tc, ok := c.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}
