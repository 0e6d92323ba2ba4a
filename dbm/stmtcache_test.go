package dbm

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestStmtCacheAnswers(t *testing.T) {
	var c stmtCache
	cases := []struct {
		text     string
		numbered bool
		sent     string
		read     bool
		blank    bool
	}{
		{"SELECT a FROM t WHERE id = ?;", true, "SELECT a FROM t WHERE id = $1", true, false},
		{"SELECT a FROM t WHERE id = ?;", false, "SELECT a FROM t WHERE id = ?", true, false},
		{"DELETE FROM t WHERE id = ?", true, "DELETE FROM t WHERE id = $1", false, false},
		{"INSERT INTO t VALUES (1) RETURNING id", false, "INSERT INTO t VALUES (1) RETURNING id", false, false},
		{" \n\t;", true, "", false, true},
		{"", true, "", false, true},
	}
	for _, tc := range cases {
		for i := range 3 { // miss, then hits
			c := &c
			if tc.numbered != cases[0].numbered {
				c = &stmtCache{} // one cache per manager, and managers have one driver
			}
			st := c.lookup(tc.text, tc.numbered, false)
			if st.sent != tc.sent || st.read != tc.read || st.blank != tc.blank {
				t.Fatalf("lookup %d of %q = (%q, read %v, blank %v), want (%q, %v, %v)", i, tc.text, st.sent, st.read, st.blank, tc.sent, tc.read, tc.blank)
			}
		}
	}
}

// The cache is keyed by text: the same statement built anew for each call
// (at a new address every time) is one entry, found without allocating.
func TestStmtCacheKeyedByText(t *testing.T) {
	var c stmtCache
	texts := make([]string, 200)
	for i := range texts {
		texts[i] = strings.Clone("SELECT id FROM users WHERE name = $1")
	}
	c.lookup(texts[0], true, false)
	i := 1
	allocs := testing.AllocsPerRun(100, func() {
		if st := c.lookup(texts[i], true, false); !st.read || st.sent != texts[0] {
			t.Fatalf("lookup %d: %+v", i, st)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("a cached statement cost %v allocations, want 0", allocs)
	}
	if c.len() != 1 {
		t.Errorf("cache holds %d entries, want 1", c.len())
	}
}

// The cache stops growing at stmtCacheMax statements, and texts longer than
// stmtCacheMaxLen never enter; both are still answered right.
func TestStmtCacheBounded(t *testing.T) {
	var c stmtCache
	for i := range stmtCacheMax + 50 {
		q := "UPDATE t SET a = " + strconv.Itoa(i)
		if st := c.lookup(q, false, false); st.read || st.sent != q {
			t.Fatalf("lookup(%q) = %+v", q, st)
		}
	}
	if c.len() != stmtCacheMax {
		t.Errorf("cache holds %d entries, want %d", c.len(), stmtCacheMax)
	}
	var d stmtCache
	long := "SELECT 1 /*" + strings.Repeat("x", stmtCacheMaxLen) + "*/"
	if st := d.lookup(long, false, false); !st.read {
		t.Errorf("long statement: %+v", st)
	}
	if d.len() != 0 {
		t.Errorf("a %d-byte statement was cached", len(long))
	}
}

// Every statement the cache took is found again, whatever its length (the
// hash reads words, a tail and short texts differently), and a text it
// never took is not: lookup would answer right either way, by working the
// statement out again, so the table is asked directly.
func TestStmtCacheFindsWhatItHolds(t *testing.T) {
	var c stmtCache
	var texts []string
	for n := range 130 {
		texts = append(texts, strings.Repeat("x", n), "SELECT "+strings.Repeat("a", n))
	}
	for _, q := range texts {
		c.lookup(q, false, false)
	}
	if c.len() != len(texts) {
		t.Fatalf("cache holds %d statements, want %d", c.len(), len(texts))
	}
	tab := c.t.Load()
	for _, q := range texts {
		if e := tab.find(strings.Clone(q)); e == nil || e.sent != strings.TrimSpace(q) {
			t.Fatalf("find(%q) = %+v", q, e)
		}
	}
	for _, q := range []string{"y", "SELECT b", strings.Repeat("x", 200), "SELECT " + strings.Repeat("a", 129) + "b"} {
		if e := tab.find(q); e != nil {
			t.Errorf("find(%q) = %+v, want nothing", q, e)
		}
	}
}

// textHash reads every byte: texts one byte apart, at any position and of
// any length up to 70, hash apart (a hash that skipped bytes would put
// statements that differ there in one probe chain).
func TestTextHashReadsEveryByte(t *testing.T) {
	const seed = 0x9e3779b97f4a7c15
	for n := 1; n <= 70; n++ {
		base := []byte(strings.Repeat("a", n))
		h := textHash(string(base), seed)
		for i := range n {
			b := append([]byte(nil), base...)
			b[i] = 'b'
			if textHash(string(b), seed) == h {
				t.Fatalf("length %d: byte %d changed, hash did not", n, i)
			}
		}
	}
	if textHash("a", 1) == textHash("a", 2) {
		t.Error("the seed does not change the hash")
	}
}

// A word equal to the hash's XOR constant makes its product 0 and drops
// what came before it; with a constant that the seed does not set, texts
// that hold such a word and differ only before it would collide under
// every seed (wyhash's own weakness). The seed sets it here, so two such
// texts collide under no seed but the one they were made for.
func TestTextHashSeedSetsEveryCollision(t *testing.T) {
	const m2 = 0xe7037ed1a0b428db // textHash's constant
	zeroing := func(k uint64) string {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], k)
		return string(b[:])
	}
	for _, made := range []uint64{0, 0x9e3779b97f4a7c15} {
		blk := zeroing(made ^ m2)
		a := "SELECT * FROM a " + blk + "AAAAAAAA WHERE id = $1"
		b := "UPDATE x SET y=1" + blk + "BBBBBBBB WHERE id = $1"
		same := 0
		for range 64 {
			seed := rand.Uint64()
			if textHash(a, seed) == textHash(b, seed) {
				same++
			}
		}
		if same > 0 {
			t.Errorf("texts made to collide under seed %#x collide under %d of 64 random seeds", made, same)
		}
		if textHash(a, made) != textHash(b, made) {
			t.Errorf("texts made to collide under seed %#x do not: the test no longer reaches the weakness it guards", made)
		}
	}
}
