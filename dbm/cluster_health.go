package dbm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// failAfter is how many checks in a row must fail before a node is taken
// out; one success puts it back.
const failAfter = 2

// checkQuery asks a server for its role and its WAL position: a primary's
// insert position (which covers every commit it acknowledged, also those
// not yet written out with synchronous_commit off), a replica's replay
// position.
const checkQuery = `SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END)::text`

// start runs one checker goroutine per node until close.
func (c *cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range c.nodes {
		g.Go(func() error {
			c.watch(ctx, n)
			return nil
		})
	}
	c.stop, c.group = cancel, g
}

// watch checks n every interval until ctx ends.
func (c *cluster) watch(ctx context.Context, n *node) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.checkNode(ctx, n)
		c.elect()
	}
}

// checkAll checks every node once, at the same time, within ctx.
func (c *cluster) checkAll(ctx context.Context) {
	var g errgroup.Group
	for _, n := range c.nodes {
		g.Go(func() error {
			c.checkNode(ctx, n)
			return nil
		})
	}
	_ = g.Wait()
	// The writer's first position is known only now: judge the replicas
	// against it.
	for _, n := range c.nodes {
		if n.healthy.Load() && !n.primary.Load() {
			n.fresh.Store(c.history.freshAt(n.lsn.Load()))
		}
	}
}

// checkNode asks n for its role and WAL position and updates its state.
func (c *cluster) checkNode(ctx context.Context, n *node) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sent := c.now()
	var inRecovery bool
	var pos *string
	err := n.check.QueryRowContext(cctx, checkQuery).Scan(&inRecovery, &pos)
	var lsn uint64
	if err == nil && pos != nil {
		lsn, err = parseLSN(*pos)
	}
	if err != nil {
		if ctx.Err() != nil {
			return // closing
		}
		n.fails.Add(1)
		n.streak++
		msg := n.mgr.secrets.ScrubConnect(err).Error()
		n.lastErr.Store(&msg)
		if n.streak >= failAfter && n.healthy.Swap(false) {
			c.log.Warn("dbm: server taken out of use", slog.String("addr", n.addr), slog.Int("failed_checks", n.streak), slog.String("error", msg))
		}
		return
	}
	n.streak = 0
	n.primary.Store(!inRecovery)
	n.lsn.Store(lsn)
	if !inRecovery {
		if n == c.writer.Load() {
			c.history.add(sent.UnixNano(), lsn)
		}
	} else {
		n.fresh.Store(c.history.freshAt(lsn))
	}
	if !n.healthy.Swap(true) {
		role := "replica"
		if !inRecovery {
			role = "primary"
		}
		c.log.Info("dbm: server in use", slog.String("addr", n.addr), slog.String("role", role))
	}
}

// elect moves writes to another node when the writer is no longer a
// healthy primary and another node is: a replica promoted after the
// primary failed. The old writer's idle connections are closed; those in
// use fail with the server or end with their work. A node that reports
// itself primary while another one is the writer (an old primary started
// again without being made a replica) serves nothing.
func (c *cluster) elect() {
	c.electMu.Lock()
	defer c.electMu.Unlock()
	w := c.writer.Load()
	if w.healthy.Load() && w.primary.Load() {
		return
	}
	for _, n := range c.nodes {
		if n == w || !n.healthy.Load() || !n.primary.Load() {
			continue
		}
		// The old writer's positions say nothing about the new one's: the
		// replicas are judged against the new writer from its next check.
		c.history.reset()
		c.writer.Store(n)
		c.failovers.Add(1)
		c.log.Warn("dbm: writes move to a new primary", slog.String("from", w.addr), slog.String("to", n.addr))
		w.mgr.db.SetMaxIdleConns(0) // closes the idle connections
		w.mgr.db.SetMaxIdleConns(w.maxIdle)
		return
	}
}

// positionAfterWrite returns the writer's WAL insert position after a
// write the caller saw succeed on n: a replica that has replayed up to it
// has that write. When it cannot be had, it returns the largest position,
// so that the caller's reads go to the primary.
func (c *cluster) positionAfterWrite(ctx context.Context, n *node) uint64 {
	var pos string
	if err := n.mgr.db.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos); err != nil {
		return math.MaxUint64
	}
	lsn, err := parseLSN(pos)
	if err != nil {
		return math.MaxUint64
	}
	return lsn
}

// covers reports whether a server that has replayed up to replayed has
// everything up to pos. The primary's insert position is past the page
// header when it stands at the start of a WAL page, where a replica's
// replay position stands before it: no record fits in the 40 bytes after a
// page boundary (a header is 24 or 40 bytes, a record at least 24), so
// that gap holds nothing to replay. (8192 is PostgreSQL's default WAL page
// size; with another, the gap is never excused, which only sends more
// reads to the primary.)
func covers(replayed, pos uint64) bool {
	return pos <= replayed || replayed%8192 == 0 && pos-replayed <= 40
}

// parseLSN parses PostgreSQL's text form of a WAL position, "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("dbm: not a WAL position: %q", s)
	}
	return h<<32 | l, nil
}

// formatLSN is parseLSN's inverse.
func formatLSN(lsn uint64) string {
	return strings.ToUpper(strconv.FormatUint(lsn>>32, 16) + "/" + strconv.FormatUint(lsn&0xFFFFFFFF, 16))
}

// lsnHistory remembers the writer's WAL position at recent checks, to turn
// a replica's replay position into a time: a replica that has replayed
// position p has everything the primary had written when its position was
// still p, so its lag is at most the time since the last check at which the
// primary's position was <= p. That bound is conservative by up to one
// check interval, and it needs no clock on the servers.
type lsnHistory struct {
	mu      sync.Mutex
	size    int
	samples []lsnSample // oldest first
}

type lsnSample struct {
	at  int64 // UnixNano, taken before the check was sent
	lsn uint64
}

func (h *lsnHistory) add(at int64, lsn uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.samples); n > 0 && h.samples[n-1].lsn > lsn {
		return // an answer that arrived after a later one's
	}
	if len(h.samples) == h.size {
		h.samples = append(h.samples[:0], h.samples[1:]...)
	}
	h.samples = append(h.samples, lsnSample{at, lsn})
}

func (h *lsnHistory) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = h.samples[:0]
}

// freshAt returns the time of the last sample at or below lsn: the replica
// had everything the primary had written by then. 0: none (older than the
// history, or no primary seen yet).
func (h *lsnHistory) freshAt(lsn uint64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.samples) - 1; i >= 0; i-- {
		if covers(lsn, h.samples[i].lsn) {
			return h.samples[i].at
		}
	}
	return 0
}

// errNoPrimary is what [Manager.Token] reports when no server is known to
// be the primary.
var errNoPrimary = errors.New("no server is known to be the primary")
