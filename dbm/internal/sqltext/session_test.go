package sqltext

import "testing"

func TestSessionState(t *testing.T) {
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"SELECT 1", false},
		{"SET search_path = app", true},
		{"set statement_timeout to 5000", true},
		{"SET SESSION statement_timeout = 5000", true},
		{"SET SESSION AUTHORIZATION alice", true},
		{"SET LOCAL statement_timeout = 5000", false},
		{"set local app.tenant = '42'", false},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", false},
		{"SET CONSTRAINTS ALL DEFERRED", false},
		{"RESET ALL", true},
		{"LISTEN jobs", true},
		{"PREPARE p AS SELECT 1", true},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", true},
		{"DECLARE c CURSOR FOR SELECT 1", false},
		{"CREATE TEMP TABLE t (x int)", true},
		{"create temporary table t (x int)", true},
		{"CREATE LOCAL TEMPORARY VIEW v AS SELECT 1", true},
		{"CREATE TEMP TABLE t (x int) ON COMMIT DROP", false},
		{"CREATE TABLE temp (x int)", false},
		{"CREATE TABLE t (temp int)", false},
		{"SELECT pg_advisory_lock(42)", true},
		{"select PG_TRY_ADVISORY_LOCK($1)", true},
		{"SELECT pg_advisory_unlock_all()", true},
		{"SELECT pg_advisory_xact_lock(42)", false},
		{"SELECT pg_try_advisory_xact_lock(42)", false},
		{"SET LOCAL lock_timeout = 1; SELECT pg_advisory_lock(1)", true},
		{"SELECT pg_advisory_lock", false}, // a column of that name, not a call
		// Words inside literals, identifiers, comments and dollar quotes.
		{"SELECT 'SET x = 1; LISTEN y'", false},
		{`SELECT "pg_advisory_lock"`, false},
		{"SELECT 1 -- SET x = 1\n", false},
		{"SELECT 1 /* ; SET x = 1 */", false},
		{"SELECT $$; SET x = 1$$", false},
		{"DO $body$ BEGIN PERFORM pg_advisory_lock(1); END $body$", false},
		// SET as a later word of a statement.
		{"UPDATE t SET x = 1", false},
		{"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1", false},
		// Several statements.
		{"SELECT 1; SET search_path = x", true},
		{";; SET search_path = x", true},
		{"SELECT 1;", false},
		{"", false},
	} {
		if got := SessionState(c.q); (got != "") != c.want {
			t.Errorf("SessionState(%q) = %q; want session state: %v", c.q, got, c.want)
		}
	}
}

func FuzzSessionState(f *testing.F) {
	for _, q := range []string{"SET x = 1", "SELECT pg_advisory_lock(1)", "CREATE TEMP TABLE t () ON COMMIT DROP", "DECLARE c CURSOR WITH HOLD FOR SELECT 1; LISTEN x"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_ = SessionState(q) // must not panic or loop
	})
}
