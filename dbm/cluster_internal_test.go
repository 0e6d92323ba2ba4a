package dbm

import (
	"testing"
)

// TestLSNHistoryFreshAt: a replica that replayed position p is fresh as of
// the last primary sample at or below p, page-boundary gap included.
func TestLSNHistoryFreshAt(t *testing.T) {
	h := lsnHistory{size: 3}
	h.add(10, 100)
	h.add(20, 200)
	h.add(30, 300)
	h.add(25, 250) // older than the last answer: ignored
	h.add(40, 8192+24)
	for _, tc := range []struct {
		replayed uint64
		want     int64
	}{
		{99, 0},    // before every sample kept: unknown
		{100, 0},   // the oldest sample fell out (size 3)
		{200, 20},  // exactly the second sample
		{299, 20},  // between samples: the earlier one
		{300, 30},  // the third
		{8192, 40}, // at a page boundary: the header after it holds nothing
		{9000, 40}, // past every sample
	} {
		if got := h.freshAt(tc.replayed); got != tc.want {
			t.Errorf("freshAt(%d) = %d, want %d", tc.replayed, got, tc.want)
		}
	}
	h.reset()
	if got := h.freshAt(1 << 40); got != 0 {
		t.Errorf("after reset freshAt = %d, want 0", got)
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		replayed, pos uint64
		want          bool
	}{
		{100, 100, true}, {100, 99, true}, {100, 101, false},
		{8192, 8192 + 24, true}, {8192, 8192 + 40, true}, {8192, 8192 + 41, false},
		{8191, 8192 + 24, false}, {0, 0, true}, {16 << 20, 16<<20 + 40, true},
	} {
		if got := covers(tc.replayed, tc.pos); got != tc.want {
			t.Errorf("covers(%d, %d) = %v, want %v", tc.replayed, tc.pos, got, tc.want)
		}
	}
}

func TestParseLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/3000060"} {
		lsn, err := parseLSN(s)
		if err != nil || formatLSN(lsn) != s {
			t.Errorf("parseLSN(%q) = %d, %v; formatted back %q", s, lsn, err, formatLSN(lsn))
		}
	}
	for _, s := range []string{"", "16", "16/", "/1", "G/1", "1/2/3", "100000000/0", "-1/0"} {
		if _, err := parseLSN(s); err == nil {
			t.Errorf("parseLSN(%q): want an error", s)
		}
	}
}
