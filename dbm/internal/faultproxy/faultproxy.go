// Package faultproxy is a loopback TCP proxy for tests that injects network
// faults between a database client and its server. Its main fault is the
// lost reply: the proxy forwards a statement to the server, waits for the
// server's answer (so the statement has run), throws the answer away and
// drops the client's connection. A client then cannot know whether its
// statement took effect, which is what a crash of the network or of a
// middlebox looks like to it.
package faultproxy

import (
	"bytes"
	"net"
	"sync"
)

// Proxy forwards every connection made to [Proxy.Addr] to the target
// address. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex // protects the fields below
	rules []*rule
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type rule struct {
	match []byte
	left  int
}

// Start listens on a free loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// DropReply arms the lost-reply fault for the next times client messages
// that contain match: such a message is forwarded, the server's next reply
// is read and discarded, and both connections are closed. The match must
// fall within one read of the client's bytes, which holds for a statement
// sent in one message.
func (p *Proxy) DropReply(match []byte, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &rule{match: bytes.Clone(match), left: times})
}

// take reports whether chunk triggers an armed rule, and consumes one use.
func (p *Proxy) take(chunk []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.left > 0 && bytes.Contains(chunk, r.match) {
			r.left--
			return true
		}
	}
	return false
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		p.wg.Add(1)
		go p.pipe(client, server)
	}
}

// pipe runs one proxied connection until either side ends or a fault
// fires.
func (p *Proxy) pipe(client, server net.Conn) {
	defer p.wg.Done()
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	defer closeBoth()
	swallow := make(chan struct{}, 1) // armed by the client side, fired by the server side
	done := make(chan struct{})
	go func() { // server -> client
		defer close(done)
		defer closeBoth()
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				select {
				case <-swallow:
					return // the reply is lost; closeBoth drops the client
				default:
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for { // client -> server
		n, err := client.Read(buf)
		if n > 0 {
			if p.take(buf[:n]) {
				swallow <- struct{}{}
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break // io.EOF: the client hung up
		}
	}
	closeBoth()
	<-done
}
