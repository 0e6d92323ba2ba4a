package dbm

import (
	"math/bits"
	"math/rand/v2"
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
// text as the caller wrote it. Readers load the table without a lock; a
// writer copies it, which happens at most stmtCacheMax times for a manager:
// once full, it takes no more (a statement not in it is worked out each
// time, which costs what a miss does).
//
// The table is an open-addressing hash table of its own rather than a Go
// map: a map of up to eight entries compares a text longer than 64 bytes
// against every slot before it hashes, and that lookup was the largest of
// the manager's own steps on a one-row read (docs/benchmarks.md,
// "Statement cache").
type stmtCache struct {
	t  atomic.Pointer[stmtTable]
	mu sync.Mutex // serialises writers of t
}

// stmtTable is one immutable version of the cache: slots holds n entries
// at the index of their text's hash (linear probing), and is kept at most
// half full, so that a miss ends at an empty slot soon.
type stmtTable struct {
	seed  uint64
	slots []stmtSlot // len is a power of two
	n     int
}

type stmtSlot struct {
	text string
	info *stmtInfo // nil: an empty slot
}

// find returns text's entry, or nil.
func (t *stmtTable) find(text string) *stmtInfo {
	mask := uint64(len(t.slots) - 1)
	for i := textHash(text, t.seed) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.info == nil || s.text == text {
			return s.info
		}
	}
}

// with returns a copy of t (nil: an empty table) that also holds text.
func (t *stmtTable) with(text string, e *stmtInfo) *stmtTable {
	next := &stmtTable{n: 1, slots: make([]stmtSlot, 8)}
	if t != nil {
		next.seed, next.n = t.seed, t.n+1
		for len(next.slots) < 2*next.n {
			next.slots = make([]stmtSlot, 2*len(next.slots))
		}
		for _, s := range t.slots {
			if s.info != nil {
				next.put(s)
			}
		}
	} else {
		next.seed = rand.Uint64()
	}
	next.put(stmtSlot{text: text, info: e})
	return next
}

func (t *stmtTable) put(s stmtSlot) {
	mask := uint64(len(t.slots) - 1)
	i := textHash(s.text, t.seed) & mask
	for t.slots[i].info != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

// textHash hashes s with seed, eight bytes at a time: wyhash's mixing
// step (a 128-bit product folded to 64 bits) over little-endian words.
// It is not hash/maphash's, whose setup costs more than the whole hash
// of a statement's text. Each word is mixed after an XOR with k, which
// the seed sets: a word equal to k makes the product 0 and drops what
// came before it, and with a constant k (wyhash's own weakness) texts
// holding that word would collide under every seed. The seed, random per
// manager, keeps texts that collide in one manager from colliding in the
// next.
func textHash(s string, seed uint64) uint64 {
	const m1, m2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	k := seed ^ m2
	h := seed ^ uint64(len(s))*m1
	if len(s) < 8 {
		var w uint64
		for i := range len(s) {
			w |= uint64(s[i]) << (8 * i)
		}
		return mix(w^k, h^m1)
	}
	last := word(s[len(s)-8:]) // the tail, read as a word that may overlap the loop's
	for ; len(s) > 16; s = s[16:] {
		h = mix(word(s)^k, word(s[8:])^h)
	}
	if len(s) > 8 {
		h = mix(word(s)^k, h^m1)
	}
	return mix(last^k, h^m1)
}

// word is s's first eight bytes as a little-endian number.
func word(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
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
	if t := c.t.Load(); t != nil {
		if e := t.find(text); e != nil {
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
	if t := c.t.Load(); t != nil && t.n >= stmtCacheMax {
		return // full: no lock, no copy
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.t.Load()
	if old != nil && (old.n >= stmtCacheMax || old.find(text) != nil) {
		return
	}
	c.t.Store(old.with(strings.Clone(text), e))
}

// len is the number of cached statements.
func (c *stmtCache) len() int {
	if t := c.t.Load(); t != nil {
		return t.n
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
