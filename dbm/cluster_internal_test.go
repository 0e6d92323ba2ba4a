package dbm

import (
	"reflect"
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

// TestAddStatsSumsEveryCounter fills every numeric field of a Stats (the
// embedded DBStats included) with a different value and checks that
// addStats carries each into the cluster's sum: a counter added to Stats
// but forgotten in addStats would read zero for a cluster.
func TestAddStatsSumsEveryCounter(t *testing.T) {
	var p Stats
	p.ErrorsByClass = map[string]uint64{"timeout": 3}
	p.AcquireWait = AcquireHistogram{Bounds: acquireBounds[:], Counts: make([]uint64, len(acquireBounds)+1), Count: 2, Sum: 5}
	p.AcquireWait.Counts[1] = 2
	var numeric []string
	var fill func(v reflect.Value, prefix string)
	n := int64(0)
	fill = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f, sf := v.Field(i), v.Type().Field(i)
			switch f.Kind() {
			case reflect.Struct:
				if sf.Anonymous {
					fill(f, prefix)
				}
			case reflect.Int, reflect.Int64:
				n++
				f.SetInt(n)
				numeric = append(numeric, prefix+sf.Name)
			case reflect.Uint64:
				n++
				f.SetUint(uint64(n))
				numeric = append(numeric, prefix+sf.Name)
			}
		}
	}
	fill(reflect.ValueOf(&p).Elem(), "")
	s := Stats{ErrorsByClass: map[string]uint64{}}
	addStats(&s, &p)
	addStats(&s, &p)
	sv, pv := reflect.ValueOf(s), reflect.ValueOf(p)
	for _, name := range numeric {
		got, want := sv.FieldByName(name), pv.FieldByName(name)
		if got.Kind() == reflect.Uint64 && got.Uint() != 2*want.Uint() || got.Kind() != reflect.Uint64 && got.Int() != 2*want.Int() {
			t.Errorf("%s = %v after adding %v twice: addStats leaves it out", name, got, want)
		}
	}
	if s.ErrorsByClass["timeout"] != 6 || s.AcquireWait.Count != 4 || s.AcquireWait.Sum != 10 || s.AcquireWait.Counts[1] != 4 {
		t.Errorf("ErrorsByClass %v, AcquireWait %+v: not summed", s.ErrorsByClass, s.AcquireWait)
	}
}
