package sqltext

import "testing"

func TestIsRead(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{"SELECT 1", true},
		{"  select * from t", true},
		{"-- note\n/* c */ (SELECT 1) UNION (SELECT 2)", true},
		{"VALUES (1)", true},
		{"SHOW search_path", true},
		{"EXPLAIN SELECT 1", true},
		{"WITH a AS (SELECT 1) SELECT * FROM a", true},
		{"WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a", false},
		{"with a as (insert into t values (1) returning id) select id from a", false},
		{"WITH a AS (SELECT updated_at FROM t) SELECT * FROM a", true},
		{"WITH a AS (SELECT 1) SELECT * FROM a WHERE x = 'delete'", false}, // errs on the safe side
		{"INSERT INTO t VALUES (1) RETURNING id", false},
		{"UPDATE t SET a = 1 RETURNING a", false},
		{"DELETE FROM t RETURNING *", false},
		{"CALL p()", false},
		{"", false},
		{"   ", false},
		{"/* unterminated", false},
		{"WITH x AS (SELECT 1) SELECT * FROM x WHERE y = 1 OR merge", false},
		{"WITH x AS (SELECT 1) SELECT update", false},
	}
	for _, tc := range tests {
		if got := IsRead(tc.q); got != tc.want {
			t.Errorf("IsRead(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func FuzzIsRead(f *testing.F) {
	for _, s := range []string{"SELECT 1", "WITH a AS (DELETE FROM t) SELECT 1", "--\n", "/*", "(((", "with update"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) { _ = IsRead(q) })
}
