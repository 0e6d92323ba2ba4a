// Package faultproxy is a loopback TCP proxy for tests that injects network
// faults between a database client and its server:
//
//   - a lost reply ([Proxy.DropReply]): a statement reaches the server, its
//     answer is thrown away and the client's connection dropped, so the
//     client cannot know whether the statement took effect;
//   - a reset in the middle of an answer ([Proxy.ResetAfter]): part of the
//     server's reply reaches the client, then both connections are reset
//     (TCP RST), so the client's read fails with ECONNRESET mid-result;
//   - latency ([Proxy.SetLatency]): every chunk waits before it is passed on,
//     in one direction or both, without limiting throughput;
//   - a black hole ([Proxy.SetBlackHole]): nothing is passed on in one
//     direction or both, and nothing is closed; the client waits for an
//     answer that does not come, as behind a dead link or firewall.
//
// Every fault can be switched at run time and applies to open connections
// as well as new ones.
package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// Direction selects the way through the proxy that a fault affects.
type Direction uint8

const (
	// ToServer is the client's bytes on their way to the server.
	ToServer Direction = 1 << iota
	// ToClient is the server's bytes on their way to the client.
	ToClient
	// Both is both ways.
	Both = ToServer | ToClient
)

// Proxy forwards every connection made to [Proxy.Addr] to the target
// address. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex // protects the fields below
	rules    []*rule
	links    map[*link]struct{} // the open connections
	latency  [2]time.Duration   // by dirIndex
	hole     Direction          // the directions that forward nothing
	changed  chan struct{}      // closed and replaced when hole changes
	accepted int
	cuts     int
	closed   bool
	refuse   bool // RefuseNew: new connections are closed at once
}

// rule is an armed DropReply, DropRequest or ResetAfter.
type rule struct {
	match   []byte
	left    int // uses left
	after   int // bytes of the reply passed on before the cut
	reset   bool
	request bool // DropRequest: the message itself is not passed on
	hold    bool // HoldRequest: and the server's side stays open
}

// cut is a rule that fired on one connection, waiting for the reply.
type cut struct {
	after   int
	reset   bool
	request bool
	hold    bool
}

// Stats is a snapshot of the proxy's counters.
type Stats struct {
	Open     int // proxied connections open now
	Accepted int // connections accepted in all
	Cuts     int // connections cut by DropReply, DropRequest or ResetAfter
}

// Start listens on a free loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Open: len(p.links), Accepted: p.accepted, Cuts: p.cuts}
}

// DropReply arms the lost-reply fault for the next times client messages
// that contain match: such a message is forwarded, the server's next reply
// is read and discarded, and both connections are closed. The match must
// fall within one read of the client's bytes, which holds for a statement
// sent in one message.
func (p *Proxy) DropReply(match []byte, times int) {
	p.arm(&rule{match: bytes.Clone(match), left: times})
}

// DropRequest arms the lost-request fault for the next times client
// messages that contain match: such a message (the whole read that holds
// it) is not passed on, and both connections are closed at once, so the
// server never sees it and the client waits for a reply that cannot come.
// The match must fall within one read of the client's bytes, as for
// DropReply.
func (p *Proxy) DropRequest(match []byte, times int) {
	p.arm(&rule{match: bytes.Clone(match), left: times, request: true})
}

// HoldRequest is DropRequest, except that only the client's connection is
// closed: the server's stays open, and the server, which never got the
// message, keeps waiting for it (a session idle in a transaction), as when
// a client's network or a NAT between drops the connection. The server's
// side is closed with the proxy.
func (p *Proxy) HoldRequest(match []byte, times int) {
	p.arm(&rule{match: bytes.Clone(match), left: times, request: true, hold: true})
}

// ResetAfter arms the mid-reply reset for the next times client messages
// that contain match: the message is forwarded, the first after bytes of
// what the server sends back are passed on (on Linux the proxy waits, up to
// two seconds, until the client's kernel has taken them in), and then both
// connections are closed with a TCP RST (SO_LINGER 0): the client reads
// those bytes, then its next read fails with ECONNRESET in the middle of
// the answer. The match must fall within one
// read of the client's bytes, as for DropReply.
func (p *Proxy) ResetAfter(match []byte, after, times int) {
	p.arm(&rule{match: bytes.Clone(match), left: times, after: max(after, 0), reset: true})
}

func (p *Proxy) arm(r *rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
}

// SetLatency makes every chunk of bytes travelling in dir wait d before it is
// passed on (0: no wait). Chunks keep their order and do not wait for one
// another, so a long answer is late by d, not by d per chunk. The latency
// applies to the chunks read from now on, on every connection.
func (p *Proxy) SetLatency(dir Direction, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, bit := range [2]Direction{ToServer, ToClient} {
		if dir&bit != 0 {
			p.latency[i] = d
		}
	}
}

// RefuseNew makes the proxy close every connection it accepts from now on
// at once, without reaching the server (as a server that is down, or at its
// connection limit, would), or, with false, forward them again. Open
// connections are not affected.
func (p *Proxy) RefuseNew(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = on
}

// SetBlackHole stops passing bytes on in the directions of dir, and passes
// them on again in the others (SetBlackHole(0) ends the fault). Nothing is
// closed and nothing is lost: held bytes, and a client's or server's hang-up,
// are passed on in order when the direction is open again. Connections made
// meanwhile are accepted, as the operating system would, and get no answer.
func (p *Proxy) SetBlackHole(dir Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = dir & Both
	close(p.changed)
	p.changed = make(chan struct{})
}

// take reports the rule that chunk triggers, and consumes one use.
func (p *Proxy) take(chunk []byte) *cut {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.left > 0 && bytes.Contains(chunk, r.match) {
			r.left--
			return &cut{after: r.after, reset: r.reset, request: r.request, hold: r.hold}
		}
	}
	return nil
}

func dirIndex(dir Direction) int {
	if dir == ToServer {
		return 0
	}
	return 1
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			_ = client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.closed { // Close ran while the server was dialled
			p.mu.Unlock()
			_, _ = client.Close(), server.Close()
			return
		}
		p.accepted++
		l := &link{p: p, client: client, server: server, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}
