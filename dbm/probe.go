package dbm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
)

// How the manager fails fast while the database is down (see prober and
// docs/reliability.md#fail-fast).
const (
	// downWait is how long, from its arrival, a caller waits for a
	// probe's verdict while the database is down before it gets
	// [ErrConnection]: the goal is an answer within 10ms, and the timer's
	// wake-up and the call's own work take up to a millisecond of it on a
	// machine that is not overloaded. A refused probe ends much sooner:
	// the caller then has its answer at once. A black hole (no answer at
	// all) fails it after downWait. Only a server that is there makes it
	// wait longer (see prober.thereLocked): a probe slow only because the
	// server is busy starting (it forks a process per connection) must not
	// fail calls to a database that is back. Pools whose dials the manager
	// cannot see into (drivers other than lib/pq, and pgx without package
	// dbmpgx) wait as before: at least
	// downWait, up to twice the time a connection took to make lately
	// (see slowPatience).
	downWait = 9 * time.Millisecond
	// probeFirstPause is the prober's first pause after the database was
	// found down; each probe that fails doubles it, up to probeMaxPause.
	probeFirstPause = 10 * time.Millisecond
	// probeMaxPause is the longest pause between two probes: a database
	// that comes back while no one calls is seen within this long.
	probeMaxPause = 250 * time.Millisecond
	// probeKickGap is the least time between the end of a probe and one
	// that a caller starts (kicks): with callers arriving, the database is
	// probed about every probeKickGap and seen back within that long,
	// by one connection attempt at a time, whatever the number of callers.
	probeKickGap = 5 * time.Millisecond
)

// prober fails calls fast while the database cannot be reached, instead of
// letting each caller dial it and wait for its own ConnectTimeout; one
// probe at a time finds out when it is back.
//
// The pool's dials (dialConnector.Connect) report to it: a connection
// attempt that fails with [ClassConnection] (refused, unreachable, timed
// out, the server starting up or shutting down), not because the caller's
// context ended, marks the database down; any connection made marks it up.
// While it is down, a caller that wants a connection (see
// [Manager.takePermit]) does not dial: it waits for the verdict of the
// probe under way, or of one it kicks off when none has run for
// probeKickGap, at most downWait from its arrival unless the server is
// there (see thereLocked), and gets an error matching [ErrConnection]
// unless that probe got through. Without callers, a loop probes with a
// pause that doubles from probeFirstPause to probeMaxPause. Probes run one at a time
// (the loop makes them all), so a returning server meets one connection
// attempt, then the pool's, never one per caller.
//
// A pool from [Wrap] has no dial wrapper and no prober (nil); every method
// is safe on nil.
type prober struct {
	dial func(ctx context.Context) error // one connection attempt, closed at once
	// watched: dial tells the [dialwatch.Watch] in its context how far
	// the attempt got (lib/pq's dialer does, see pqDialer, and pgx's
	// with package dbmpgx). Without it, the slower patience applies
	// (slowPatience).
	watched bool
	// timeout bounds a probe (Config.ConnectTimeout).
	timeout time.Duration
	now     func() time.Time

	down      atomic.Bool
	dialTime  atomic.Int64  // a recent successful connection's duration, smoothed; nanoseconds
	connected atomic.Int64  // the number (started) of the last probe whose connection was made
	heard     atomic.Int64  // the number (started) of the last probe the server sent bytes to
	probes    atomic.Uint64 // probes made
	fastFails atomic.Uint64 // calls failed fast while down

	mu        sync.Mutex // protects the fields below
	last      error      // the failure that marked the database down, or the last probe's
	since     time.Time  // when it was marked down
	running   bool       // a probe is under way
	started   int64      // probes begun
	startedAt time.Time  // when the last one began
	endedNum  int64      // the number (started) of the last probe that ended
	ended     time.Time  // when the last probe ended
	answered  bool       // the server answered the last probe (refused it or sent it bytes), or refused the dial that marked it down
	heardEnd  time.Time  // when the last probe the server sent bytes to ended
	verdict   chan struct{}
	loop      bool // the probe loop runs
	closed    bool
	kick      chan struct{} // wakes the loop; one slot
	stop      chan struct{} // closed by close
	loopDone  sync.WaitGroup

	base       context.Context // a probe's context: close cancels it
	cancelBase context.CancelFunc
}

// newProber makes the prober of a pool whose connection attempts are made
// by dial; watched: dial reports to the [dialwatch.Watch] in its context
// (see prober.watched).
func newProber(dial func(ctx context.Context) error, watched bool, timeout time.Duration) *prober {
	p := &prober{dial: dial, watched: watched, timeout: timeout, now: time.Now, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	p.base, p.cancelBase = context.WithCancel(context.Background())
	return p
}

// isDown reports whether the database is marked down; false on nil.
func (p *prober) isDown() bool { return p != nil && p.down.Load() }

// dialed records the outcome of one of the pool's connection attempts.
// callerEnded: the caller's context ended, which says nothing about the
// database.
func (p *prober) dialed(err error, callerEnded bool, took time.Duration) {
	if p == nil {
		return
	}
	if err == nil {
		p.tookToConnect(took)
		if p.down.Load() {
			p.mu.Lock()
			p.markUpLocked()
			p.endVerdictLocked()
			p.mu.Unlock()
		}
		return
	}
	if callerEnded || !unreachable(err) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = err
	if p.down.Load() || p.closed {
		return
	}
	p.since = p.now()
	p.answered = wasRefused(err)
	p.down.Store(true)
	if !p.loop {
		p.loop = true
		p.loopDone.Add(1)
		go p.run()
	}
}

// unreachable reports whether a failed connection attempt says that the
// database cannot be reached: [ClassConnection], and not a certificate the
// client refused (a configuration error that probing cannot mend).
func unreachable(err error) bool {
	return Classify(err) == ClassConnection && !isCertificateFailure(err)
}

// tookToConnect folds the time a successful connection took into
// dialTime (an exponentially weighted average, weight 1/4).
func (p *prober) tookToConnect(d time.Duration) {
	for {
		old := p.dialTime.Load()
		n := int64(d)
		if old > 0 {
			n = old + (int64(d)-old)/4
		}
		if p.dialTime.CompareAndSwap(old, n) {
			return
		}
	}
}

// slowPatience is how long, from the later of the probe's start and its
// own arrival, a caller waits for a probe's verdict when the prober cannot
// see how far a probe got (see downWait).
func (p *prober) slowPatience() time.Duration {
	return min(max(downWait, 2*time.Duration(p.dialTime.Load())), p.timeout)
}

func (p *prober) markUpLocked() {
	p.down.Store(false)
	p.last = nil
}

// run is the probe loop: it probes after a pause that doubles while the
// database stays down, or at once when a caller kicks it, until a probe
// (or one of the pool's own dials) gets through or close is called.
func (p *prober) run() {
	defer p.loopDone.Done()
	pause := probeFirstPause
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.quit()
			return
		case <-t.C:
			pause = min(2*pause, probeMaxPause)
		case <-p.kick:
			if !t.Stop() {
				<-t.C
			}
			// Callers kick as often as they come: keep probeKickGap
			// after the last probe.
			p.mu.Lock()
			gap := probeKickGap - p.now().Sub(p.ended)
			p.mu.Unlock()
			if gap > 0 {
				t.Reset(gap)
				select {
				case <-p.stop:
					p.quit()
					return
				case <-t.C:
				}
			}
		}
		if p.probeOnce() {
			return
		}
		t.Reset(pause)
	}
}

// quit ends the loop for close: the callers waiting for a verdict are
// woken (and fail fast).
func (p *prober) quit() {
	p.mu.Lock()
	p.loop = false
	p.endVerdictLocked()
	p.mu.Unlock()
}

// probeOnce makes one connection attempt and records its verdict; true
// when the database is up (the loop then ends).
func (p *prober) probeOnce() bool {
	p.mu.Lock()
	if !p.down.Load() || p.closed {
		p.loop = false
		p.endVerdictLocked()
		p.mu.Unlock()
		return true
	}
	p.running = true
	p.started++
	num := p.started
	p.startedAt = p.now()
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(dialwatch.With(p.base, probeWatch{p, num}), p.timeout)
	p.probes.Add(1)
	start := p.now()
	err := p.dial(ctx)
	took := p.now().Sub(start)
	cancel()
	if err == nil {
		p.tookToConnect(took)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = false
	p.ended = p.now()
	p.endedNum = num
	heard := p.heard.Load() == num
	p.answered = heard || wasRefused(err)
	if heard {
		p.heardEnd = p.ended
	}
	up := err == nil || !p.down.Load()
	if up {
		p.markUpLocked()
		p.loop = false
	} else {
		p.last = err
	}
	p.endVerdictLocked()
	return up
}

// endVerdictLocked wakes the callers waiting for a verdict.
func (p *prober) endVerdictLocked() {
	if p.verdict != nil {
		close(p.verdict)
		p.verdict = nil
	}
}

// admit decides a call while the database is marked down: nil when it is
// found up, otherwise the cause of the call's [ErrConnection]. The verdict
// must come from a probe begun after the call arrived (an older one may
// have been refused just before the server came back): the call kicks
// one when none is under way (the loop keeps probeKickGap after the last)
// and waits for it at most downWait from its arrival, or longer while the
// server is there (see waitLocked).
func (p *prober) admit(ctx context.Context) *databaseDown {
	arrival := p.now()
	arrived := int64(-1)
	for {
		p.mu.Lock()
		if !p.down.Load() {
			p.mu.Unlock()
			return nil
		}
		if arrived < 0 {
			arrived = p.started
		}
		var wait time.Duration
		switch {
		case p.endedNum > arrived || p.closed:
			// A probe begun since the call arrived says down.
		case p.running:
			wait = p.waitLocked(arrival, false)
		default:
			select {
			case p.kick <- struct{}{}:
			default:
			}
			wait = p.waitLocked(arrival, true)
		}
		if wait <= 0 {
			return p.failLocked()
		}
		if p.verdict == nil {
			p.verdict = make(chan struct{})
		}
		ch := p.verdict
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
			t.Stop()
			continue
		case <-t.C:
			if p.watched {
				// The probe under way may have found the server
				// there meanwhile: waitLocked says.
				continue
			}
		case <-ctx.Done():
			t.Stop()
		}
		p.mu.Lock()
		if !p.down.Load() {
			p.mu.Unlock()
			return nil
		}
		return p.failLocked()
	}
}

// waitLocked is how much longer a call that arrived at arrival waits for
// the verdict of the probe under way, or (kicked) of the one it has just
// kicked off. While the server is there (thereLocked), until the probe
// ends; otherwise until downWait after its arrival, or after the next
// probe may begin when the last one the server answered with bytes (such
// as "the database system is starting up") ended since.
func (p *prober) waitLocked(arrival time.Time, kicked bool) time.Duration {
	now := p.now()
	switch {
	case p.thereLocked():
		return p.timeout - now.Sub(p.startedAt)
	case p.watched:
		from := arrival
		if next := p.heardEnd.Add(probeKickGap); next.After(from) {
			from = next
		}
		return downWait - now.Sub(from)
	case kicked:
		return probeKickGap + p.slowPatience()
	}
	// From the later of the probe's start and the call's arrival: a probe
	// that is slow because the server is only now coming up may still get
	// through.
	return p.slowPatience() - min(now.Sub(p.startedAt), now.Sub(arrival))
}

// thereLocked reports whether the probe under way is talking to a server
// that is there, if slow: the server has sent bytes on its connection, or
// the connection is made and the server answered the probe before
// (refused it, or sent it bytes: a server that stopped and is starting
// again). A black hole answers nothing, ever, although its connections
// may be made (a hung server's, or a proxy's).
func (p *prober) thereLocked() bool {
	if !p.watched || !p.running {
		return false
	}
	n := p.started
	return p.heard.Load() == n || (p.answered && p.connected.Load() == n)
}

// wasRefused reports whether a connection attempt was refused: the
// server's host answered, with no server listening (on a Unix socket, the
// socket's file may be gone instead).
func wasRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// probeWatch is the [dialwatch.Watch] of probe num.
type probeWatch struct {
	p   *prober
	num int64
}

func (w probeWatch) Connected() { w.p.connected.Store(w.num) }
func (w probeWatch) Answered()  { w.p.heard.Store(w.num) }

// failLocked counts a call failed fast and returns its cause; it unlocks
// p.mu.
func (p *prober) failLocked() *databaseDown {
	defer p.mu.Unlock()
	p.fastFails.Add(1)
	return &databaseDown{since: p.now().Sub(p.since), err: p.last}
}

// close stops the probe loop and waits for it. Further failures no longer
// start it; the pool is closing.
func (p *prober) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
		p.cancelBase()
	}
	p.mu.Unlock()
	p.loopDone.Wait()
}

// state is [Stats.ProbeState].
func (p *prober) state() string {
	switch {
	case p == nil:
		return ""
	case p.down.Load():
		return ProbeDown
	}
	return ProbeUp
}

// Values of [Stats.ProbeState].
const (
	ProbeUp   = "up"   // the last connection attempt got through
	ProbeDown = "down" // calls fail fast while one probe at a time checks the database
)

// errDatabaseDown is the cause of the [ErrConnection] errors of calls
// failed fast; errors.Is finds it.
var errDatabaseDown = errors.New("database unreachable: failing fast while one probe at a time checks it")

// databaseDown is the cause of a call failed fast: how long the database
// has been down and the connection error that says why.
type databaseDown struct {
	since time.Duration
	err   error
}

func (e *databaseDown) Error() string {
	msg := errDatabaseDown.Error() + " (down for " + e.since.Round(time.Millisecond).String() + ")"
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}
func (e *databaseDown) Unwrap() []error {
	if e.err == nil {
		return []error{errDatabaseDown}
	}
	return []error{errDatabaseDown, e.err}
}

// downErr is the error of a call failed fast, or nil when the database is
// (found) up.
func (m *Manager) downErr(ctx context.Context, op, q string) error {
	if dd := m.probe.admit(ctx); dd != nil {
		return m.newError(ClassConnection, "", op, q, dd)
	}
	return nil
}
