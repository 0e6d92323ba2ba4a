package dbm

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// cluster routes the work of a [Manager] made with Config.ReplicaHosts over
// a primary and its replicas (docs/replicas.md):
//
//   - a statement outside a transaction that only reads goes to a healthy
//     replica whose lag is within Config.ReplicaMaxLag and that has
//     replayed the caller's [Token], if any (else to the primary);
//   - every other statement, [Manager.BeginTx], [Manager.WithTx],
//     [Manager.Conn] and [Manager.Ping] go to the primary;
//   - a checker goroutine per server (see cluster_health.go) keeps each
//     server's role, health and replay position, and moves writes to a
//     replica that was promoted when the primary failed.
//
// Each server is a node with a Manager of its own (its own pool, counters
// and leak registry), made by [New] from the same Config with the node's
// host and port; the router the application holds only chooses the node.
// The single-server path pays one nil check (Manager.routed) per call.
type cluster struct {
	m        *Manager // the router the application holds
	nodes    []*node  // nodes[0] is the configured primary, then ReplicaHosts in order
	policy   string
	maxLag   time.Duration
	interval time.Duration
	timeout  time.Duration // bounds one health check
	now      func() time.Time
	log      *slog.Logger

	writer  atomic.Pointer[node] // where writes go: the node last seen as primary
	rr      atomic.Uint64        // round-robin position
	history lsnHistory           // the writer's WAL position over time (see lag)

	electMu   sync.Mutex // serializes elect
	failovers atomic.Uint64

	stop  context.CancelFunc
	group *errgroup.Group
}

// node is one server.
type node struct {
	addr    string
	mgr     *Manager
	check   *sql.DB // one connection of its own, for the health checks
	maxIdle int     // Config.MaxIdleConns, restored after dropping idle connections

	healthy atomic.Bool   // the last checks answered (see failAfter)
	primary atomic.Bool   // pg_is_in_recovery() was false at the last check
	lsn     atomic.Uint64 // WAL position at the last check: insert (primary) or replay (replica)
	fresh   atomic.Int64  // a replica had replayed all the writer wrote before this time (UnixNano); 0: unknown
	reads   atomic.Uint64 // statements routed here as reads
	writes  atomic.Uint64 // statements and transactions routed here as writes
	fails   atomic.Uint64 // failed checks in all
	lastErr atomic.Pointer[string]

	streak int // consecutive failed checks; only the node's checker touches it
}

// withoutConnect makes [New] skip its first ping: a node's server may be
// down when the manager starts, and the checker finds out.
func withoutConnect() Option { return optionFunc(func(o *options) { o.noConnect = true }) }

// routed returns m's cluster, or nil for a single server (and a nil m).
func (m *Manager) routed() *cluster {
	if m == nil {
		return nil
	}
	return m.cluster
}

// routedQuerier is routed for a [Querier] that is a *Manager.
func routedQuerier(q Querier) *cluster {
	if m, ok := q.(*Manager); ok {
		return m.routed()
	}
	return nil
}

// newCluster is [New] for a Config with ReplicaHosts (validated, defaults
// applied). It makes a node per server, checks them all once, and succeeds
// when one of them answers; a server that is down is taken into use once it
// answers a later check.
func newCluster(ctx context.Context, cfg Config, opts []Option) (*Manager, error) {
	o := buildOptions(opts)
	if err := o.check("New"); err != nil {
		return nil, err
	}
	cfg, err := o.retrySettings("New", cfg)
	if err != nil {
		return nil, err
	}
	replicas, err := cfg.replicaAddrs()
	if err != nil {
		return nil, err
	}
	c := &cluster{
		policy:   cmp.Or(cfg.ReplicaPolicy, ReplicaRoundRobin),
		maxLag:   cmp.Or(cfg.ReplicaMaxLag, DefaultReplicaMaxLag),
		interval: cmp.Or(cfg.ReplicaCheckInterval, DefaultReplicaCheckInterval),
		now:      o.now,
		log:      o.logger,
	}
	c.timeout = max(4*c.interval, time.Second)
	c.history.size = max(64, int(c.maxLag/c.interval)+4)
	nodeOpts := append(slices.Clip(opts), withoutConnect())
	for _, a := range append([]nodeAddr{{cfg.Host, cfg.Port}}, replicas...) {
		ncfg := cfg
		ncfg.Host, ncfg.Port, ncfg.ReplicaHosts = a.host, a.port, nil
		n, err := newNode(ctx, ncfg, nodeOpts)
		if err != nil {
			return nil, errors.Join(err, c.closeNodes())
		}
		n.addr = a.String()
		c.nodes = append(c.nodes, n)
	}
	first := c.nodes[0].mgr
	// The router runs no statement itself: the nodes track what is open.
	ro := o
	ro.leak.off = true
	m := newManager(first.db, cfg, ro, first.secrets)
	m.addr = first.addr + " +" + strconv.Itoa(len(replicas)) + " replicas"
	m.cluster, c.m = c, m
	c.writer.Store(c.nodes[0])

	c.checkAll(ctx)
	if !slices.ContainsFunc(c.nodes, func(n *node) bool { return n.healthy.Load() }) {
		// No server answered: wait for the configured primary as New does
		// for a single server (retrying within ConnectTimeout).
		if err := first.connect(ctx, cfg.ConnectTimeout); err != nil {
			return nil, errors.Join(err, c.closeNodes())
		}
		c.checkAll(ctx)
	}
	c.elect()
	c.start()
	return m, nil
}

// newNode makes the Manager of one server, without connecting, and the
// one-connection pool its checks use.
func newNode(ctx context.Context, cfg Config, opts []Option) (*node, error) {
	mgr, err := New(ctx, cfg, opts...)
	if err != nil {
		return nil, err
	}
	chk, _, err := openPool(cfg.Driver, cfg.dsn(), cfg.ConnectTimeout, defaultOptions(), mgr.secrets)
	if err != nil {
		return nil, errors.Join(&Error{Class: ClassConfig, Op: "connect", Err: mgr.secrets.ScrubConnect(err)}, mgr.Close())
	}
	chk.SetMaxOpenConns(1)
	chk.SetMaxIdleConns(1)
	return &node{mgr: mgr, check: chk.DB, maxIdle: cmp.Or(cfg.MaxIdleConns, cfg.MaxOpenConns)}, nil
}

// close stops the checkers and closes every node's pools.
func (c *cluster) close() error {
	if c.stop != nil {
		c.stop()
		_ = c.group.Wait() // the checkers return no error
	}
	return c.closeNodes()
}

func (c *cluster) closeNodes() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.check.Close(), n.mgr.Close())
	}
	return errors.Join(errs...)
}

// pick chooses the node for a statement of fn (a Manager method) and
// reports whether it is a write: Exec, a statement that does not only read,
// and one marked [NotIdempotent] always are.
func (c *cluster) pick(ctx context.Context, fn, query string, avoid *node) (*node, bool) {
	write := fn == "Exec"
	if !write {
		idem, marked := idempotence(ctx)
		write = marked && !idem || !c.m.stmts.lookup(query, c.m.numbered, false).read
	}
	if write {
		n := c.writer.Load()
		n.writes.Add(1)
		return n, true
	}
	n := c.reader(ctx, avoid)
	n.reads.Add(1)
	return n, false
}

// reader returns the node for a read: one of the replicas that may serve
// it (avoid excepted), chosen by the policy, else the writer.
func (c *cluster) reader(ctx context.Context, avoid *node) *node {
	w := c.writer.Load()
	if forcedPrimary(ctx) {
		return w
	}
	need := tokenOf(ctx)
	limit := c.now().Add(-c.maxLag).UnixNano()
	var buf [8]*node
	cands := buf[:0]
	for _, n := range c.nodes {
		if n != w && n != avoid && n.healthy.Load() && !n.primary.Load() && n.fresh.Load() >= limit && covers(n.lsn.Load(), need) {
			cands = append(cands, n)
		}
	}
	switch {
	case len(cands) == 0:
		return w
	case len(cands) == 1:
		return cands[0]
	case c.policy == ReplicaLeastInUse:
		// Ties go round the replicas, so that idle ones share the reads.
		start := int(c.rr.Add(1) % uint64(len(cands)))
		best, bestUse := cands[start], cands[start].mgr.db.Stats().InUse
		for i := 1; i < len(cands); i++ {
			n := cands[(start+i)%len(cands)]
			if use := n.mgr.db.Stats().InUse; use < bestUse {
				best, bestUse = n, use
			}
		}
		return best
	default:
		return cands[c.rr.Add(1)%uint64(len(cands))]
	}
}

// written records a write that succeeded on n for the caller's
// [ReadYourWrites] context, if any.
func (c *cluster) written(ctx context.Context, n *node, write bool, err error) {
	if !write || err != nil {
		return
	}
	if h := holderOf(ctx); h != nil {
		h.raise(c.positionAfterWrite(ctx, n))
	}
}

// run runs one statement of fn (a Manager method) on the node pick
// chooses, through do, and records a write for [ReadYourWrites].
func (c *cluster) run(ctx context.Context, fn, query string, do func(session) error) error {
	if err := c.m.check(ctx, fn); err != nil {
		return err
	}
	n, write := c.pick(ctx, fn, query, nil)
	err := do(n.mgr.session())
	if err != nil && reroutable(err, write) {
		// The server is gone (or no longer the primary) and the statement
		// did not run there: once, on the node chosen now (a promoted
		// standby for a write, another replica or the primary for a read).
		if again, _ := c.pick(ctx, fn, query, n); again != n {
			n, err = again, do(again.mgr.session())
		}
	}
	c.written(ctx, n, write, err)
	return err
}

// reroutable reports whether a statement that failed with err may run
// again on another server: a read that failed to reach its server, or a
// write that the error proves did not take effect (no connection, or the
// server refused it as read-only, as a demoted primary does).
func reroutable(err error, write bool) bool {
	if errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	switch Classify(err) {
	case ClassConnection, ClassTooManyConnections:
		// A write's connection error that may have taken effect matches
		// ErrOutcomeUnknown (see markOutcomeUnknown); this one did not.
		return true
	case ClassReadOnly:
		return write
	}
	return false
}

func (c *cluster) executeQuery(ctx context.Context, dest any, query string, args []any) error {
	return c.run(ctx, "ExecuteQuery", query, func(s session) error { return s.executeQuery(ctx, dest, query, args) })
}

func (c *cluster) get(ctx context.Context, dest any, query string, args []any) error {
	return c.run(ctx, "Get", query, func(s session) error { return s.get(ctx, dest, query, args) })
}

func (c *cluster) exec(ctx context.Context, query string, args []any) (res sql.Result, err error) {
	err = c.run(ctx, "Exec", query, func(s session) error {
		res, err = s.exec(ctx, query, args)
		return err
	})
	return res, err
}

func (c *cluster) query(ctx context.Context, query string, args []any) (rows *Rows, err error) {
	err = c.run(ctx, "Query", query, func(s session) error {
		rows, err = s.query(ctx, query, args)
		return err
	})
	return rows, err
}

// clusterSelect is [Select] on a manager with replicas.
func clusterSelect[T any](ctx context.Context, c *cluster, query string, args []any) (out []T, err error) {
	err = c.run(ctx, "Select", query, func(s session) error {
		out, err = selectRows[T](ctx, s, query, args)
		return err
	})
	return out, err
}

// beginTx starts a transaction on the primary. Under [ReadYourWrites], its
// commit moves the caller's token past it.
func (c *cluster) beginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	if err := c.m.check(ctx, "BeginTx"); err != nil {
		return nil, err
	}
	n := c.writer.Load()
	n.writes.Add(1)
	tx, err := n.mgr.BeginTx(ctx, opts)
	if err == nil {
		c.afterCommit(ctx, n, tx)
	}
	return tx, err
}

func (c *cluster) afterCommit(ctx context.Context, n *node, tx *Tx) {
	if h := holderOf(ctx); h != nil {
		_ = tx.AfterCommit(func() { h.raise(c.positionAfterWrite(context.WithoutCancel(ctx), n)) })
	}
}

// withTx is [Manager.WithTx] on the primary: each run of fn takes the
// primary of the moment, so a run after a failover goes to the new one.
func (c *cluster) withTx(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx *Tx) error) error {
	if err := c.m.check(ctx, "WithTx"); err != nil {
		return err
	}
	if fn == nil {
		return &ArgumentError{Func: "WithTx", Arg: "fn", Reason: "nil function"}
	}
	return c.m.retry(ctx, "tx", "", txRerunnable, false, func() error {
		n := c.writer.Load()
		n.writes.Add(1)
		return n.mgr.withTxOnce(ctx, opts, func(ctx context.Context, tx *Tx) error {
			c.afterCommit(ctx, n, tx)
			return fn(ctx, tx)
		})
	})
}

// conn pins a connection to the primary.
func (c *cluster) conn(ctx context.Context) (*Conn, error) {
	if err := c.m.check(ctx, "Conn"); err != nil {
		return nil, err
	}
	n := c.writer.Load()
	n.writes.Add(1)
	return n.mgr.Conn(ctx)
}

// ping pings the primary.
func (c *cluster) ping(ctx context.Context) error {
	if err := c.m.check(ctx, "Ping"); err != nil {
		return err
	}
	return c.writer.Load().mgr.Ping(ctx)
}

// leaks lists what is open on every node, oldest first.
func (c *cluster) leaks() []Leak {
	var all []Leak
	for _, n := range c.nodes {
		all = append(all, n.mgr.Leaks()...)
	}
	slices.SortStableFunc(all, func(a, b Leak) int { return cmp.Compare(b.Age, a.Age) })
	return all
}
