package dbm

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/fpstack"
)

// Leak is one [Rows], [Tx] or [Conn] that is still open, as [Manager.Leaks] and the
// error of [Manager.Close] report it. See docs/leaks.md.
type Leak struct {
	// Kind is "rows", "tx" or "conn" (a [Conn] from [Manager.Conn]).
	Kind string
	// Query is the statement that opened the rows, shortened, with no
	// argument values; empty for a transaction or a connection.
	Query string
	// Age is how long the resource has been open.
	Age time.Duration
	// Location is "file.go:123" of the first caller outside package dbm
	// (and outside Go's runtime and iterator machinery) that opened it.
	Location string
	// Stack is the full stack of the code that opened the resource, one
	// "function\n\tfile:line" pair per frame, when Config.LeakStacks or
	// [WithLeakStacks] is on; empty otherwise.
	Stack string
}

// String returns `rows "SELECT ..." opened at file.go:12, open 1.5s`.
func (l Leak) String() string {
	var b strings.Builder
	b.WriteString(l.Kind)
	if l.Query != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(l.Query))
	}
	b.WriteString(" opened at ")
	b.WriteString(l.Location)
	b.WriteString(", open ")
	b.WriteString(l.Age.Round(time.Millisecond).String())
	return b.String()
}

// LeakError is the cause inside the error [Manager.Close] returns when rows
// or transactions were still open; that error matches [ErrLeaked]. Reach it
// with [errors.As] for the list.
type LeakError struct {
	Leaks []Leak // oldest first
}

// Error lists every open resource with its location.
func (e *LeakError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(e.Leaks)))
	b.WriteString(" still open at Close: ")
	for i, l := range e.Leaks {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l.String())
	}
	return b.String()
}

// Leaks returns what is open now (rows not yet closed, even when read to the end;
// transactions neither committed nor rolled back), oldest first. Tracking
// can be turned off with [WithLeakTracking]; Leaks then returns nil, as it
// does for a nil manager.
func (m *Manager) Leaks() []Leak {
	if m == nil {
		return nil
	}
	if m.cluster != nil {
		return m.cluster.leaks()
	}
	return m.leaks.snapshot()
}

const (
	kindRows uint8 = iota
	kindTx
	kindConn
)

var kindNames = [...]string{kindRows: "rows", kindTx: "tx", kindConn: "conn"}

// leakPCs is how many frames are recorded at open without LeakStacks: enough
// to get past the manager's own frames (Query, session.query, Iter, a retry
// loop) to the caller's.
const leakPCs = 8

// leakNode is the registry's record of one open resource.
//
// A node is young at first: it holds the Rows or Tx wrapper (youngRows,
// youngTx), and no cleanup is attached. Most resources are closed while
// young and never pay for runtime.AddCleanup. The sweeper (see sweep) finds
// the nodes that have been open for leakSweepAge, attaches the cleanup to
// their wrapper and drops the node's reference to it: from then on the node
// never refers to the wrapper, so that the garbage collector can find a
// dropped wrapper and run its cleanup, which receives the node.
//
// Nodes are recycled through nodePool once released: release stops the
// cleanup (if any) while the wrapper is still reachable, so nothing else can
// hold the node any more.
type leakNode struct {
	prev, next *leakNode // in shard's list; guarded by shard.mu
	open       bool      // guarded by shard.mu
	warned     bool      // logged as over the threshold; guarded by shard.mu
	// warnPending: check has claimed the node's WARN and not logged it yet;
	// closedEarly: the caller closed it meanwhile, so check logs the INFO
	// after its WARN and recycles the node. Both guarded by shard.mu.
	warnPending, closedEarly bool
	kind                     uint8 // kindRows, kindTx, kindConn
	shard                    uint8 // index into leakRegistry.shards
	reg                      *leakRegistry
	query                    string        // as sent; shortened and scrubbed only when reported
	opened                   time.Duration // since reg.base, on the monotonic clock
	pcs                      [leakPCs]uintptr
	stack                    []uintptr // the whole stack, with LeakStacks
	rows                     *sql.Rows // what the cleanup closes
	tx                       *sql.Tx   // what the cleanup rolls back
	// The wrapper while the node is young; guarded by shard.mu.
	youngRows *Rows
	youngTx   *Tx
	youngConn *Conn
	cleanup   runtime.Cleanup // attached by sweep; guarded by shard.mu
	aged      bool            // the cleanup is attached: counted in reg.aged; guarded by shard.mu
	// what the cleanup gives back after closing rows or tx, if they own one
	conn *ownedConn
	// a reclaimed tx's span, ended by the cleanup (nil without a Tracer)
	trace    *txTrace
	traceCtx context.Context
}

var nodePool = sync.Pool{New: func() any { return new(leakNode) }}

// leakShards spreads the open resources over independently locked lists, so
// that parallel queries rarely meet on a lock. A power of two.
const leakShards = 32

type leakShard struct {
	mu   sync.Mutex
	head *leakNode // oldest first; guarded by mu
	tail *leakNode // guarded by mu
	_    [40]byte  // keeps shards on separate cache lines
}

// leakRegistry tracks the open Rows and Tx of one manager. A nil registry
// tracks nothing.
type leakRegistry struct {
	hooks     leakHooks
	stacks    bool
	threshold time.Duration
	now       func() time.Time // the clock
	opts      leakOptions      // the options, which win over Config

	// base is when the registry was made. A node's open time is kept as
	// the monotonic time since base (time.Since reads only the monotonic
	// clock, half the cost of time.Now on a VM's slow clock source).
	base time.Time

	detected  atomic.Uint64
	reclaimed atomic.Uint64
	attached  atomic.Uint64 // cleanups attached by sweep; for tests
	// aged counts the open nodes with a cleanup attached: the resources a
	// garbage collection could reclaim if the program dropped them.
	aged atomic.Int64
	// collections counts the garbage collections forced for a caller that
	// waited for a connection (see reclaimForWaiters).
	collections atomic.Uint64
	wait        waitWatch // the sweep loop's own; see leaksweep.go

	// sweeping is set while a sweep loop runs (or is being started); every
	// open reads it, and starts the loop when it is clear.
	sweeping  atomic.Bool
	sweepMu   sync.Mutex
	sweepRun  bool          // a sweep loop runs; guarded by sweepMu
	sweepDone chan struct{} // closed when it returns; guarded by sweepMu
	closed    bool          // Close was called: start no loop; guarded by sweepMu
	sweepStop chan struct{} // closed by Close

	stopOnce sync.Once
	stop     chan struct{} // closed by Close; nil without a threshold
	stopped  chan struct{}

	shards [leakShards]leakShard
}

// leakHooks is all the registry needs from its manager. The registry
// holds no *Manager: what it logs, how it shows a statement, the pool's
// counts, what a rollback it did means to the statistics and the tracer,
// and the error Close returns all come through here.
type leakHooks struct {
	log *slog.Logger
	// statement shows a statement as reports do: shortened, withheld when
	// it contains the password.
	statement func(q string) string
	// poolStats reads the pool's counts (see reclaimForWaiters), the
	// waits in the manager's queue included; queued is how many callers
	// wait in that queue now.
	poolStats func() sql.DBStats
	queued    func() int
	// rolledBack counts and traces a transaction the registry rolled back;
	// why is what a [Tracer] is told.
	rolledBack func(ctx context.Context, tt *txTrace, why error)
	// closeError is the classified (and counted) error Close returns for
	// what was still open.
	closeError func(e *LeakError) error
}

func newLeakRegistry(h leakHooks, o options) *leakRegistry {
	if o.leak.off {
		return nil
	}
	return &leakRegistry{hooks: h, now: time.Now, base: time.Now(), opts: o.leak, sweepStop: make(chan struct{})}
}

// configure applies Config.LeakThreshold and Config.LeakStacks (unless an
// option set them) and starts the threshold check when there is one. [New]
// and [Wrap] call it once, before the manager is used.
func (r *leakRegistry) configure(threshold time.Duration, stacks bool) {
	if r == nil {
		return
	}
	r.threshold, r.stacks = threshold, stacks
	if r.opts.threshold != nil {
		r.threshold = *r.opts.threshold
	}
	if r.opts.stacks != nil {
		r.stacks = *r.opts.stacks
	}
	if r.threshold <= 0 {
		return
	}
	r.stop, r.stopped = make(chan struct{}), make(chan struct{})
	go r.watch(min(max(r.threshold/4, time.Millisecond), time.Second))
}

// watch checks for resources over the threshold every interval until Close.
func (r *leakRegistry) watch(interval time.Duration) {
	defer close(r.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.check(r.now())
		}
	}
}

// trackRows starts tracking rows and returns them.
func (r *leakRegistry) trackRows(rows *Rows) *Rows {
	if r != nil {
		n := nodePool.Get().(*leakNode)
		n.rows, n.conn, n.youngRows = rows.rows, rows.conn, rows
		r.open(n, kindRows, rows.query)
		rows.leak.Store(n)
		if !r.sweeping.Load() {
			r.startSweeper()
		}
	}
	return rows
}

// trackTx starts tracking tx.
func (r *leakRegistry) trackTx(tx *Tx) {
	if r != nil {
		n := nodePool.Get().(*leakNode)
		n.tx, n.conn, n.youngTx = tx.tx, tx.conn, tx
		if tx.trace != nil {
			n.trace, n.traceCtx = tx.trace, tx.ctx
		}
		r.open(n, kindTx, "")
		tx.leak = n
		if !r.sweeping.Load() {
			r.startSweeper()
		}
	}
}

// trackConn starts tracking c. Its node's conn is the Conn's own
// connection, which a reclaim discards (see ownedConn.release).
func (r *leakRegistry) trackConn(c *Conn) {
	if r != nil {
		n := nodePool.Get().(*leakNode)
		n.conn, n.youngConn = c.own, c
		r.open(n, kindConn, "")
		c.leak = n
		if !r.sweeping.Load() {
			r.startSweeper()
		}
	}
}

// releaseConn forgets c: it was closed. Conn calls it once.
func (r *leakRegistry) releaseConn(c *Conn) {
	if n := c.leak; n != nil {
		r.release(n)
	}
	runtime.KeepAlive(c) // until the cleanup is stopped; see leakNode
}

// releaseRows forgets rows: they were closed. It is idempotent.
func (r *leakRegistry) releaseRows(rows *Rows) {
	if n := rows.leak.Swap(nil); n != nil {
		r.release(n)
	}
	runtime.KeepAlive(rows) // until the cleanup is stopped; see leakNode
}

// releaseTx forgets tx: it was committed or rolled back. Tx calls it once.
func (r *leakRegistry) releaseTx(tx *Tx) {
	if n := tx.leak; n != nil {
		r.release(n)
	}
	runtime.KeepAlive(tx) // until the cleanup is stopped; see leakNode
}

// open fills in n, opened now by the caller of trackRows or trackTx, and
// links it into a shard.
func (r *leakRegistry) open(n *leakNode, kind uint8, query string) {
	n.kind, n.reg, n.query, n.opened, n.open, n.warned = kind, r, query, time.Since(r.base), true, false
	// Skip open and trackRows/trackTx.
	if r.stacks {
		if cap(n.stack) < 64 {
			n.stack = make([]uintptr, 64)
		}
		n.stack = n.stack[:fpstack.Callers(2, n.stack[:64])]
	} else {
		n.stack = n.stack[:0]
		clear(n.pcs[:])
		fpstack.Callers(2, n.pcs[:])
	}
	n.shard = uint8(rand.Uint32() % leakShards)
	s := &r.shards[n.shard]
	s.mu.Lock()
	n.prev = s.tail
	if s.tail != nil {
		s.tail.next = n
	} else {
		s.head = n
	}
	s.tail = n
	s.mu.Unlock()
}

// remove unlinks n and reports whether it was still open, whether it had
// been reported as over the threshold, and the cleanup the sweeper attached
// (zero while n was young). It drops n's reference to the wrapper.
//
// byCaller tells that the caller closed the resource (not the reclaimer):
// if check is logging the node's WARN at this moment, the node is then left
// to check, which logs the INFO after its WARN (pending is true).
func (r *leakRegistry) remove(n *leakNode, byCaller bool) (wasOpen, warned, pending bool, c runtime.Cleanup) {
	s := &r.shards[n.shard]
	s.mu.Lock()
	if !n.open {
		s.mu.Unlock()
		return false, false, false, c
	}
	warned, pending, c = r.unlinkLocked(s, n, byCaller)
	s.mu.Unlock()
	return true, warned, pending, c
}

// unlinkLocked is remove of n, open in s, with s.mu held.
func (r *leakRegistry) unlinkLocked(s *leakShard, n *leakNode, byCaller bool) (warned, pending bool, c runtime.Cleanup) {
	n.open = false
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = nil, nil
	n.youngRows, n.youngTx, n.youngConn = nil, nil, nil
	if n.aged {
		n.aged = false
		r.aged.Add(-1)
	}
	warned, pending, c = n.warned, n.warnPending, n.cleanup
	if pending && byCaller {
		n.closedEarly = true
	}
	return warned, pending, c
}

// release forgets n, whose resource was closed, and recycles it. The caller
// keeps the wrapper reachable until release returns.
func (r *leakRegistry) release(n *leakNode) {
	open, warned, pending, c := r.remove(n, true)
	if !open {
		return // reclaimed meanwhile; the cleanup owns n
	}
	// Unlinked, n is out of the sweeper's reach. A young node has no
	// cleanup: Stop on the zero Cleanup does nothing.
	c.Stop()
	if pending {
		return // check logs the INFO after its WARN, then recycles n
	}
	if warned {
		r.hooks.log.Info("dbm: leaked "+kindNames[n.kind]+" closed", r.attrs(n.infoLocked(), r.now())...)
	}
	recycle(n)
}

// recycle clears n and puts it back in the pool.
func recycle(n *leakNode) {
	n.rows, n.tx, n.conn, n.query, n.cleanup = nil, nil, nil, "", runtime.Cleanup{}
	n.trace, n.traceCtx = nil, nil
	nodePool.Put(n)
}

// reclaim is the cleanup that sweep attaches to a tracked Rows or Tx that
// lives long; it runs after the garbage collector found the wrapper
// unreachable. A resource that was still open gives its connection back to
// the pool. The closing happens on a new goroutine because it may block:
// rolling back a transaction waits for its open rows, and a driver may read
// the rest of a result from the network.
func reclaim(n *leakNode) {
	r := n.reg
	if open, _, _, _ := r.remove(n, false); !open {
		return
	}
	go func() {
		// Counted once the rows or transaction are closed and before the
		// connection goes back: the caller it is given to may run (and
		// read Stats) before this goroutine goes on.
		r.end(n, errTxReclaimed, true)
		r.hooks.log.Warn("dbm: "+kindNames[n.kind]+" dropped without being closed; reclaimed by the garbage collector", r.attrs(n.infoLocked(), r.now())...)
	}()
}

// end closes n's rows or rolls back its transaction, counts it in
// LeaksReclaimed when reclaimed (before the connection goes back, so that a
// caller the connection wakes sees the count), then gives back the
// connection it owns. n was removed by its
// caller, who owns it: nothing recycles it any more (a release that comes
// later finds it closed). why is what a [Tracer] is told about a
// transaction.
func (r *leakRegistry) end(n *leakNode, why error, reclaimed bool) {
	if n.rows != nil {
		_ = n.rows.Close()
	}
	if n.tx != nil {
		_ = n.tx.Rollback()
		r.hooks.rolledBack(n.traceCtx, n.trace, why)
	}
	if reclaimed {
		r.reclaimed.Add(1)
	}
	n.conn.release() // after the rows or tx let it go
}

// check logs, once each, the resources open longer than the threshold.
func (r *leakRegistry) check(now time.Time) {
	if r == nil || r.threshold <= 0 {
		return
	}
	type claimed struct {
		n  *leakNode
		in leakInfo
	}
	var over []claimed
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for n := s.head; n != nil; n = n.next {
			if !n.warned && now.Sub(n.openedAt()) >= r.threshold {
				n.warned, n.warnPending = true, true
				r.detected.Add(1)
				over = append(over, claimed{n, n.infoLocked()})
			}
		}
		s.mu.Unlock()
	}
	// The WARNs are logged without a lock held; a resource closed meanwhile
	// gets its INFO only after its WARN (see remove).
	for _, c := range over {
		r.hooks.log.Warn("dbm: "+kindNames[c.in.kind]+" open longer than the leak threshold", r.attrs(c.in, now)...)
	}
	for _, c := range over {
		s := &r.shards[c.n.shard]
		s.mu.Lock()
		closed := c.n.closedEarly
		c.n.warnPending, c.n.closedEarly = false, false
		s.mu.Unlock()
		if closed {
			r.hooks.log.Info("dbm: leaked "+kindNames[c.in.kind]+" closed", r.attrs(c.in, r.now())...)
			recycle(c.n)
		}
	}
}

// leakInfo is a copy of what a report needs from a node, taken under its
// shard's lock: once released, a node is recycled for another resource.
type leakInfo struct {
	kind   uint8
	query  string
	opened time.Time
	pcs    [leakPCs]uintptr
	stack  []uintptr
}

// infoLocked copies n; n's shard is locked, or n is owned by the caller.
func (n *leakNode) infoLocked() leakInfo {
	return leakInfo{kind: n.kind, query: n.query, opened: n.openedAt(), pcs: n.pcs, stack: slices.Clone(n.stack)}
}

// openedAt is when n was opened, with a monotonic clock reading.
func (n *leakNode) openedAt() time.Time { return n.reg.base.Add(n.opened) }

// attrs describes in for a log record: kind, location, age and statement
// (shortened and scrubbed; never argument values).
func (r *leakRegistry) attrs(in leakInfo, now time.Time) []any {
	l := r.describe(in, now)
	a := []any{slog.String("kind", l.Kind), slog.String("location", l.Location), slog.Duration("age", l.Age)}
	if l.Query != "" {
		a = append(a, slog.String("statement", l.Query))
	}
	if l.Stack != "" {
		a = append(a, slog.String("stack", l.Stack))
	}
	return a
}

// snapshot returns the open resources, oldest first.
func (r *leakRegistry) snapshot() []Leak {
	if r == nil {
		return nil
	}
	var all []leakInfo
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for n := s.head; n != nil; n = n.next {
			all = append(all, n.infoLocked())
		}
		s.mu.Unlock()
	}
	slices.SortStableFunc(all, func(a, b leakInfo) int { return a.opened.Compare(b.opened) })
	now := r.now()
	leaks := make([]Leak, len(all))
	for i, in := range all {
		leaks[i] = r.describe(in, now)
	}
	return leaks
}

// describe symbolizes in.
func (r *leakRegistry) describe(in leakInfo, now time.Time) Leak {
	l := Leak{Kind: kindNames[in.kind], Age: now.Sub(in.opened)}
	if in.query != "" {
		l.Query = r.hooks.statement(in.query)
	}
	full := len(in.stack) > 0
	pcs := in.pcs[:]
	if full {
		pcs = in.stack
	}
	l.Location, l.Stack = locate(pcs, full)
	return l
}

// leakOptions are the leak detector's [Option] values; the zero value is the
// default: tracking on, threshold and stacks from [Config].
type leakOptions struct {
	off       bool
	threshold *time.Duration
	stacks    *bool
	noSweeper bool // tests only: no background sweep (see sweep)
}

// WithLeakTracking turns the tracking of open [Rows] and [Tx] on (the
// default) or off. Off, [Manager.Leaks] returns nil, nothing is logged or
// reclaimed, and [Manager.Close] does not report open resources; a query
// then saves the detector's cost (see docs/benchmarks.md).
func WithLeakTracking(on bool) Option {
	return optionFunc(func(o *options) { o.leak.off = !on })
}

// WithLeakThreshold sets how long a [Rows] or [Tx] may stay open before it is
// logged as a probable leak, overriding Config.LeakThreshold; zero turns the
// report off. It is the way to set the threshold for a manager made with
// [Wrap], which takes no Config. A negative d makes [New] and [Wrap] fail
// with an [*ArgumentError] (as a negative Config.LeakThreshold is an
// [ErrConfig] error).
func WithLeakThreshold(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d < 0 {
			o.invalid("WithLeakThreshold", "negative duration "+d.String()+" (zero turns the report off)")
			return
		}
		o.leak.threshold = &d
	})
}

// WithLeakStacks records the full stack of the code that opens each [Rows]
// and [Tx] (reported in [Leak].Stack) instead of the caller's file:line
// only, overriding Config.LeakStacks. It costs a few microseconds per open.
func WithLeakStacks(on bool) Option {
	return optionFunc(func(o *options) { o.leak.stacks = &on })
}

// dbmDir is the directory of this package's source files, as the runtime
// reports file names (trimmed with -trimpath). Frames are attributed by file
// rather than function name: a closure of a generic function inlined into
// the caller (Iter's) is named after the caller.
var dbmDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}()

// locate returns "file.go:line" of the first frame outside package dbm and
// Go's runtime and iterator machinery, and, when full is set, the whole
// stack.
func locate(pcs []uintptr, full bool) (loc, stack string) {
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.PC == 0 && !more {
			break
		}
		if loc == "" && !internalFrame(f) {
			loc = filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
			if !full {
				break
			}
		}
		if full {
			b.WriteString(f.Function)
			b.WriteString("\n\t")
			b.WriteString(f.File)
			b.WriteString(":")
			b.WriteString(strconv.Itoa(f.Line))
			b.WriteString("\n")
		}
		if !more {
			break
		}
	}
	if loc == "" {
		loc = "unknown (deeper than " + strconv.Itoa(leakPCs) + " frames inside dbm; set DB_LEAK_STACKS=true)"
	}
	return loc, b.String()
}

// internalFrame reports whether f is the manager's own code (a file of this
// package that is not a test) or Go's runtime and iterator machinery.
func internalFrame(f runtime.Frame) bool {
	if filepath.Dir(f.File) == dbmDir && !strings.HasSuffix(f.File, "_test.go") {
		return true
	}
	return strings.HasPrefix(f.Function, "runtime.") || strings.HasPrefix(f.Function, "iter.")
}

// leakStats fills the leak counters of s.
func (r *leakRegistry) leakStats(s *Stats) {
	if r != nil {
		s.LeaksDetected = r.detected.Load()
		s.LeaksReclaimed = r.reclaimed.Load()
		s.LeakCollections = r.collections.Load()
	}
}

// errTxReclaimed is what a [Tracer] is told about a transaction that the
// garbage collector's cleanup rolled back.
var errTxReclaimed = fmt.Errorf("%w: transaction dropped without Commit or Rollback; rolled back when the garbage collector found it", ErrLeaked)
