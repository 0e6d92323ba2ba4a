package dbm

import (
	"sync/atomic"
	"unsafe"

	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// stmtInfo is what the manager works out about a statement's text once:
// the text it sends, whether it only reads, and the plan its rows were last
// scanned with.
type stmtInfo struct {
	text string // as the caller wrote it
	sent string // trailing semicolons trimmed, '?' rebound for $n drivers
	read bool   // sqltext.IsRead(sent)
	args int    // the arguments it takes, for SQLite; -1: not counted (see countArgs)
	// plan is the last scan plan used for this statement's rows; a hint,
	// used only when its element type and columns match.
	plan atomic.Pointer[plan]
}

// stmtSlots is the size of the statement cache (a power of two).
const stmtSlots = 256

// stmtCache remembers the statements an application runs over and over,
// keyed by where their text lives: a statement written as a constant has
// the same address on every call, so a hit costs one pointer comparison,
// with no hashing of the text. A slot holds one statement; the last one
// that settled there wins. Text built anew for each call (a new address
// every time) is not cached: it enters only when the same address and
// length are seen twice in a row, so one-off statements cost no
// allocation.
//
// An entry keeps its text alive, so while it is cached no other string can
// take its address; the text is compared in full anyway.
type stmtCache struct {
	slots  [stmtSlots]atomic.Pointer[stmtInfo]
	missed [stmtSlots]atomic.Uintptr // the key of the last miss per slot
}

// stmtRef is a statement ready to run: what [session.prepare] returns.
type stmtRef struct {
	sent string
	read bool
	args int // see stmtInfo.args
	// plan is the cached statement's plan hint; nil when it is not cached.
	plan *atomic.Pointer[plan]
}

// lookup returns the statement's text as sent, whether it only reads and,
// with count set, how many arguments it takes, computing them on a miss.
func (c *stmtCache) lookup(text string, numbered, count bool) stmtRef {
	i, key := stmtSlot(text)
	if e := c.slots[i].Load(); e != nil && e.text == text {
		return stmtRef{sent: e.sent, read: e.read, args: e.args, plan: &e.plan}
	}
	sent := sentText(text, numbered)
	read := sqltext.IsRead(sent)
	args := -1
	if count {
		if n, plain := sqltext.Marks(sent); plain {
			args = n
		}
	}
	if c.missed[i].Swap(key) != key {
		return stmtRef{sent: sent, read: read, args: args}
	}
	e := &stmtInfo{text: text, sent: sent, read: read, args: args}
	c.slots[i].Store(e)
	return stmtRef{sent: sent, read: read, args: args, plan: &e.plan}
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

// stmtSlot returns the slot for text and the key of its address and length.
func stmtSlot(text string) (slot int, key uintptr) {
	p := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	return int((p>>4 ^ p>>12 ^ uintptr(len(text))) & (stmtSlots - 1)), p ^ uintptr(len(text))<<48
}
