package sqltext

import (
	"strings"
	"testing"
)

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
		{"WITH a AS (SELECT 1) SELECT * FROM a WHERE x = 'delete'", true}, // a literal is not a keyword
		{`WITH a AS (SELECT 1) SELECT "update" FROM a`, true},
		{"WITH a AS (SELECT 1) SELECT * FROM a -- delete later\n", true},
		{"WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE", false}, // errs on the safe side
		{"INSERT INTO t VALUES (1) RETURNING id", false},
		{"UPDATE t SET a = 1 RETURNING a", false},
		{"DELETE FROM t RETURNING *", false},
		{"CALL p()", false},
		{"", false},
		{"   ", false},
		{"/* unterminated", false},
		{"WITH x AS (SELECT 1) SELECT * FROM x WHERE y = 1 OR merge", false},
		{"WITH x AS (SELECT 1) SELECT update", false},
		{"SELECT 1;", true},
		{"SELECT 1 ; ;\n -- done\n", false}, // a comment after the ";": the safe side
		{"SHOW search_path", true},
		{"PRAGMA table_info(t)", true},
		{"DESCRIBE t", true},

		// EXPLAIN ANALYZE runs the statement it explains.
		{"EXPLAIN ANALYZE SELECT * FROM t", true},
		{"EXPLAIN ANALYZE DELETE FROM t", false},
		{"explain analyse update t set a = 1", false},
		{"EXPLAIN ANALYZE VERBOSE INSERT INTO t VALUES (1)", false},
		{"EXPLAIN (ANALYZE) DELETE FROM t", false},
		{"EXPLAIN (ANALYZE true, BUFFERS) UPDATE t SET a = 1", false},
		{"EXPLAIN (FORMAT JSON, ANALYZE) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", false},
		{"EXPLAIN (ANALYZE, COSTS off) SELECT 1", true},
		{"EXPLAIN (ANALYZE) WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a", false},
		{"EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", false},
		{"EXPLAIN ANALYZE SELECT * INTO t2 FROM t", false},
		{"EXPLAIN ANALYZE FORMAT=TREE SELECT 1", true},
		{"EXPLAIN ANALYZE FORMAT=TREE DELETE t FROM t JOIN u ON t.id = u.id", false},
		{"DESC ANALYZE DELETE FROM t", false},
		{"-- c\nEXPLAIN /* ANALYZE */ DELETE FROM t", true}, // not run: plain EXPLAIN
		{"EXPLAIN (COSTS off) DELETE FROM t", true},
		{"EXPLAIN DELETE FROM t", true},
		{"EXPLAIN VERBOSE SELECT 1", true},
		{"EXPLAIN FORMAT=JSON DELETE FROM t", true},
		{"EXPLAIN ANALYZE", false},
		{"EXPLAIN (ANALYZE", false},
		{"EXPLAIN(; DELETE FROM t", false},

		// More than one statement.
		{"SELECT 1; DELETE FROM t", false},
		{"select 1;delete from t;", false},
		{"SELECT 1;\n-- then\nUPDATE t SET a = 1", false},
		{"EXPLAIN SELECT 1; DELETE FROM t", false},
		{"SHOW x; DELETE FROM t", false},
		{"WITH a AS (SELECT 1) SELECT * FROM a; DROP TABLE t", false},
		// A ';' anywhere is not a read, even inside a literal or comment:
		// where a second statement starts depends on each server's rules
		// (nested comments, backslash escapes, MySQL's "#" and "-- ").
		{"SELECT ';' AS s, 'a;b'", false},
		{`SELECT ";" FROM t`, false},
		{"SELECT 1 -- ; DELETE FROM t", false},
		{"SELECT 1 /* ; DELETE FROM t */", false},
		{"SELECT $$;DELETE FROM t$$", false},
		{"SELECT $f$ ; DELETE $f$ AS body", false},
		{`SELECT E'\';DELETE FROM t'`, false},
		{`SELECT 'C:\'; DELETE FROM t`, false}, // standard strings: the ' after \ ends the literal
		{"SELECT `a;b` FROM t", false},

		// SELECT ... INTO makes a table (or sets variables, or writes a file).
		{"SELECT * INTO t2 FROM t", false},
		{"select a, b into temp t2 from t", false},
		{"SELECT a INTO @v FROM t", false},
		{"SELECT a FROM t INTO OUTFILE '/tmp/x'", false},
		{"WITH a AS (SELECT 1) SELECT * INTO t2 FROM a", false},
		{"SELECT 'into' FROM t", true},
		{`SELECT "into" FROM t`, true},
		{"SELECT into_date, intos FROM t", true},
		{"SELECT $$ INTO $$", true},
	}
	for _, tc := range tests {
		if got := IsRead(tc.q); got != tc.want {
			t.Errorf("IsRead(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestIsReadDoesNotAllocate(t *testing.T) {
	q := "EXPLAIN (ANALYZE, BUFFERS) WITH a AS (SELECT 'x;y' FROM t) SELECT * FROM a; -- done"
	if n := testing.AllocsPerRun(100, func() { _ = IsRead(q) }); n != 0 {
		t.Errorf("IsRead allocated %v times", n)
	}
}

// plain reports whether q holds none of the bytes that open a literal,
// a quoted identifier, a comment or a dollar quote, so that text appended
// to it is read as SQL.
func plain(q string) bool { return !strings.ContainsAny(q, "'\"`$-/") }

// FuzzIsRead checks that IsRead never panics and that, for a statement
// without literals or comments, a read followed by a second statement, or
// explained with ANALYZE in front of a write, is never taken for a read.
func FuzzIsRead(f *testing.F) {
	for _, s := range []string{"SELECT 1", "WITH a AS (DELETE FROM t) SELECT 1", "--\n", "/*", "(((", "with update",
		"EXPLAIN (ANALYZE) SELECT 1", "SELECT 1; SELECT 2", "SELECT * INTO t FROM u", "EXPLAIN FORMAT=JSON SELECT 1"} {
		f.Add(s)
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, q string) {
		read := IsRead(q)
		if read != IsRead(q) {
			t.Fatalf("IsRead(%q) is not deterministic", q)
		}
		if !plain(q) {
			return
		}
		if read && IsRead(q+"; DELETE FROM t") {
			t.Errorf("IsRead(%q + \"; DELETE FROM t\") = true", q)
		}
		if read && IsRead(q+" INTO t2") && !startsWith(q, "SHOW", "PRAGMA", "EXPLAIN", "DESCRIBE", "DESC") {
			t.Errorf("IsRead(%q + \" INTO t2\") = true", q)
		}
		if !read && IsRead("EXPLAIN ANALYZE "+q) && !startsWith(q, "ANALYZE", "ANALYSE", "VERBOSE", "EXTENDED", "PARTITIONS", "FORMAT") {
			t.Errorf("IsRead(EXPLAIN ANALYZE %q) = true, but %q is not a read", q, q)
		}
		if read != IsRead("EXPLAIN ANALYZE ("+q+")") && !strings.ContainsAny(q, "();") {
			t.Errorf("IsRead(EXPLAIN ANALYZE (%q)) != IsRead(%q)", q, q)
		}
	})
}

// startsWith reports whether q's first word is one of words.
func startsWith(q string, words ...string) bool {
	l := lexer{q: q}
	w := l.keyword()
	for _, x := range words {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

// Statements a lexer with one dialect's rules would call reads, but that
// run a write on PostgreSQL or MySQL/MariaDB (found in review; the MySQL
// ones delete a row through go-sql-driver with multiStatements=true).
func TestIsReadDialectTricks(t *testing.T) {
	for _, q := range []string{
		`EXPLAIN ("analyze") DELETE FROM t`,
		"SELECT 1 /* a /* b */ it's */; DELETE FROM t; -- '",
		`SELECT 'a\', '; DELETE FROM t; -- '`,
		"SELECT 1 AS $a$; DELETE FROM t; SELECT 1 AS $a$",
		"SELECT 1 --1; DELETE FROM t",
		"SELECT 1 # it's\n; DELETE FROM t",
	} {
		if IsRead(q) {
			t.Errorf("IsRead(%q) = true; it runs a write", q)
		}
	}
}
