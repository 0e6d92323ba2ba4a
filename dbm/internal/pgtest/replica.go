package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lib/pq"
)

// StartReplica makes a streaming replica of s, a running server from
// [Start] (or another replica): pg_basebackup -R copies s's data directory
// into a new temporary directory and writes the standby.signal file and the
// primary_conninfo that make the copy follow s, and the copy starts on a
// free 127.0.0.1 port of its own. The replica has s's superuser and
// password, and the same cleanup as Start's. It returns once the replica
// accepts logins; by then it has replayed everything s had written when the
// backup began.
//
// opts may add settings, such as [WithSetting]("recovery_min_apply_delay",
// "2s") for a replica that lags on purpose; the other options of Start do
// not apply. pg_basebackup is looked up next to initdb; without it the test
// is skipped (or failed, with DBM_REQUIRE_INTEGRATION=1).
func (s *Server) StartReplica(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	basebackup := filepath.Join(filepath.Dir(s.initdb), "pg_basebackup")
	if !isExecutable(basebackup) {
		o.missing(t, "pg_basebackup (to make a replica)", fmt.Errorf("not found next to %s", s.initdb))
		t.Skipf("SKIP: pg_basebackup not available next to %s", s.initdb)
	}
	r := &Server{Host: s.Host, Superuser: s.Superuser, Password: s.Password, initdb: s.initdb, pgctl: s.pgctl, runAs: s.runAs}
	r.makeDir(t)
	out, err := r.runEnv([]string{"PGPASSWORD=" + s.Password}, basebackup,
		"-h", s.Host, "-p", strconv.Itoa(s.Port), "-U", s.Superuser, "-D", r.DataDir,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	if err != nil {
		t.Fatalf("pgtest: pg_basebackup from %s: %v\n%s", s.Addr(), err, out)
	}
	settings := [][2]string{
		{"unix_socket_directories", r.Dir},
		{"hot_standby", "on"},
		// Report replay progress often, so that the primary's view in
		// pg_stat_replication and the replica's own stay close.
		{"wal_receiver_status_interval", "1s"},
	}
	if err := r.appendConf(append(settings, o.settings...)); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	r.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	for {
		if err := r.Ready(ctx); err == nil {
			return r
		} else if ctx.Err() != nil {
			t.Fatalf("pgtest: replica on %s does not accept logins: %v\nserver log:\n%s", r.Addr(), err, r.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Open returns a pool of connections to the server as its superuser
// (database postgres), closed when the test ends: for the tests' own
// statements (pg_promote(), pg_wal_replay_pause(), ...), outside the code
// under test.
func (s *Server) Open(t testing.TB) *sql.DB {
	t.Helper()
	c, err := pq.NewConnector(s.dsn())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Promote makes a replica the primary with pg_promote(), waiting until the
// promotion is complete (the server accepts writes).
func (s *Server) Promote(ctx context.Context) error {
	c, err := pq.NewConnector(s.dsn())
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var ok bool
	if err := db.QueryRowContext(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("pgtest: pg_promote on %s: %w", s.Addr(), err)
	}
	if !ok {
		return fmt.Errorf("pgtest: pg_promote on %s did not complete within 60s", s.Addr())
	}
	return nil
}
