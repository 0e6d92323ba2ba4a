package dbm

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// stmtInfo is what the manager works out about a statement's text once:
// the text it sends, whether it only reads, and how many arguments it
// takes.
type stmtInfo struct {
	sent  string // trailing semicolons trimmed, '?' rebound for $n drivers
	read  bool   // sqltext.IsRead(sent)
	blank bool   // sent is empty or white space: no statement at all
	args  int    // the arguments it takes, for SQLite; -1: not counted (see countArgs)
}

// Bounds of the statement cache: how many statements it holds, and how
// long a text it takes. Applications run a few statements over and over;
// text built with its values inside never repeats and would only fill it.
const (
	stmtCacheMax    = 1024
	stmtCacheMaxLen = 4096
)

// stmtCache is the manager's one statement cache, keyed by the statement's
// text as the caller wrote it. Readers load the map without a lock; a
// writer copies it, which happens at most stmtCacheMax times for a manager:
// once full, it takes no more (a statement not in it is worked out each
// time, which costs what a miss does).
type stmtCache struct {
	m  atomic.Pointer[map[string]*stmtInfo]
	mu sync.Mutex // serialises writers of m
}

// stmtRef is a statement ready to run: what [session.prepare] returns.
type stmtRef struct {
	sent  string
	read  bool
	blank bool
	args  int // see stmtInfo.args
}

// lookup returns the statement's text as sent, whether it only reads and,
// with count set, how many arguments it takes, computing them on a miss.
func (c *stmtCache) lookup(text string, numbered, count bool) stmtRef {
	if m := c.m.Load(); m != nil {
		if e, ok := (*m)[text]; ok {
			return stmtRef{sent: e.sent, read: e.read, blank: e.blank, args: e.args}
		}
	}
	sent := sentText(text, numbered)
	e := &stmtInfo{sent: sent, read: sqltext.IsRead(sent), blank: strings.TrimSpace(sent) == "", args: -1}
	if count {
		if n, plain := sqltext.Marks(sent); plain {
			e.args = n
		}
	}
	if len(text) <= stmtCacheMaxLen {
		c.add(text, e)
	}
	return stmtRef{sent: e.sent, read: e.read, blank: e.blank, args: e.args}
}

// add caches e for text, unless the cache is full or has text already.
func (c *stmtCache) add(text string, e *stmtInfo) {
	if m := c.m.Load(); m != nil && len(*m) >= stmtCacheMax {
		return // full: no lock, no copy
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	next := map[string]*stmtInfo{}
	if old != nil {
		if _, ok := (*old)[text]; ok || len(*old) >= stmtCacheMax {
			return
		}
		next = maps.Clone(*old)
	}
	next[strings.Clone(text)] = e
	c.m.Store(&next)
}

// len is the number of cached statements.
func (c *stmtCache) len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// sentText is text as the manager sends it: trailing semicolons and white
// space trimmed, '?' rebound to $n when numbered (see [Manager.Rebind]).
func sentText(text string, numbered bool) string {
	sent := sqltext.Trim(text)
	if numbered {
		sent = sqltext.Rebind(sent)
	}
	return sent
}
