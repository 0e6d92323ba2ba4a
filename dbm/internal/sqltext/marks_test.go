package sqltext

import "testing"

func TestMarks(t *testing.T) {
	for _, tc := range []struct {
		q     string
		n     int
		plain bool
	}{
		{"SELECT 1", 0, true},
		{"INSERT INTO t (a, b) VALUES (?, ?)", 2, true},
		{"SELECT '?', \"?\", `?`, [?] FROM t WHERE a = ? -- ?\n AND b = ? /* ? */", 2, true},
		{"SELECT 'it''s ?' WHERE a = ?", 1, true},
		{"INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)", 2, true},
		{"SELECT ?1, ?2", 0, false},
		{"SELECT :a", 0, false},
		{"SELECT @a", 0, false},
		{"SELECT $a", 0, false},
		{"SELECT ? WHERE x = :name", 1, false},
		{"SELECT time('12:00')", 0, true},
	} {
		if n, plain := Marks(tc.q); n != tc.n || plain != tc.plain {
			t.Errorf("Marks(%q) = %d, %v; want %d, %v", tc.q, n, plain, tc.n, tc.plain)
		}
	}
}
