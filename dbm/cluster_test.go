package dbm_test

// A primary and streaming replicas on throwaway PostgreSQL servers of the
// test's own (pgtest.Start, pgtest.StartReplica: initdb, pg_basebackup -R):
// routing, health, lag bounds and read-your-writes (issue 17). The
// failover test is in cluster_failover_test.go.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// clusterBound bounds how long the manager may take to notice a change of
// a server (down, up, caught up): generous, the machines running the tests
// are slow and shared. It bounds a hang; it is not a speed target.
const clusterBound = 30 * time.Second

// replicaSet is a primary and its replicas.
type replicaSet struct {
	primary  *pgtest.Server
	replicas []*pgtest.Server
}

// startReplicaSet starts a primary and n replicas of it; replicaOpts apply
// to every replica.
func startReplicaSet(t *testing.T, n int, primaryOpts []pgtest.Option, replicaOpts ...pgtest.Option) replicaSet {
	t.Helper()
	rs := replicaSet{primary: pgtest.Start(t, append([]pgtest.Option{pgtest.OnMissing(missingServer)}, primaryOpts...)...)}
	for range n {
		rs.replicas = append(rs.replicas, rs.primary.StartReplica(t, append([]pgtest.Option{pgtest.OnMissing(missingServer)}, replicaOpts...)...))
	}
	return rs
}

// config is a Config for the set: the primary, every replica, and a check
// interval short enough for tests.
func (rs replicaSet) config() dbm.Config {
	cfg := dbm.Config{Host: rs.primary.Host, Port: rs.primary.Port, User: rs.primary.Superuser, Password: rs.primary.Password,
		Database: "postgres", SSLMode: "disable", ReplicaCheckInterval: 50 * time.Millisecond, ReplicaMaxLag: 5 * time.Second}
	for _, r := range rs.replicas {
		cfg.ReplicaHosts = append(cfg.ReplicaHosts, r.Addr())
	}
	return cfg
}

// openCluster opens a manager on cfg, closed when the test ends.
func openCluster(t *testing.T, cfg dbm.Config, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clusterBound)
	defer cancel()
	m, err := dbm.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closeAtEnd(t, m)
	return m
}

// closeAtEnd closes m when the test ends; a Close error fails the test.
func closeAtEnd(t *testing.T, m *dbm.Manager) {
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// waitNodes waits until ok holds of m's nodes.
func waitNodes(t *testing.T, m *dbm.Manager, what string, ok func([]dbm.NodeStats) bool) {
	t.Helper()
	deadline := time.Now().Add(clusterBound)
	for {
		nodes := m.Stats().Nodes
		if ok(nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still not %s: %+v", clusterBound, what, nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allInUse: every node healthy, replicas within the lag bound.
func allInUse(maxLag time.Duration) func([]dbm.NodeStats) bool {
	return func(nodes []dbm.NodeStats) bool {
		for _, n := range nodes {
			if !n.Healthy || n.Role == "replica" && (n.Lag < 0 || n.Lag > maxLag) {
				return false
			}
		}
		return true
	}
}

// serverPort is the port of the server that runs a statement.
const serverPort = "SELECT inet_server_port()"

// portCounts runs n reads on q and counts which server answered each.
func portCounts(t *testing.T, ctx context.Context, q dbm.Querier, n int) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for range n {
		port, err := dbm.One[int](ctx, q, serverPort)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		counts[port]++
	}
	return counts
}

// TestReplicasRouting: reads outside a transaction go to the replicas,
// round-robin spreads them evenly; writes, Exec, transactions, a pinned
// Conn and Primary(ctx) go to the primary; least-in-use avoids a replica
// whose connection is held. The read spread is logged (docs/replicas.md).
func TestReplicasRouting(t *testing.T) {
	t.Parallel()
	rs := startReplicaSet(t, 2, nil)
	cfg := rs.config()
	m := openCluster(t, cfg)
	waitNodes(t, m, "all in use", allInUse(cfg.ReplicaMaxLag))
	ctx := t.Context()
	primary, r1, r2 := rs.primary.Port, rs.replicas[0].Port, rs.replicas[1].Port

	const reads = 3000
	start := time.Now()
	counts := portCounts(t, ctx, m, reads)
	t.Logf("round-robin, %d sequential reads in %s: primary %d, replica 1 %d, replica 2 %d", reads, time.Since(start).Round(time.Millisecond), counts[primary], counts[r1], counts[r2])
	if counts[primary] != 0 || counts[r1]+counts[r2] != reads {
		t.Errorf("reads reached %v; want only the replicas %d and %d", counts, r1, r2)
	}
	if d := counts[r1] - counts[r2]; d < -reads/10 || d > reads/10 {
		t.Errorf("round-robin spread %d / %d; want within 10%%", counts[r1], counts[r2])
	}
	// Select, Get, Query and ExecuteQuery route the same way.
	var viaGet int
	if err := m.Get(ctx, &viaGet, serverPort); err != nil || viaGet == primary {
		t.Errorf("Get answered by %d (%v); want a replica", viaGet, err)
	}
	var viaEQ []int
	if err := m.ExecuteQuery(ctx, &viaEQ, serverPort); err != nil || len(viaEQ) != 1 || viaEQ[0] == primary {
		t.Errorf("ExecuteQuery answered by %v (%v); want a replica", viaEQ, err)
	}

	// Everything else goes to the primary.
	if _, err := m.Exec(ctx, "CREATE TABLE replicas_routing (id int)"); err != nil {
		t.Fatalf("Exec (a write, on the primary): %v", err)
	}
	for name, run := range map[string]func() (int, error){
		"Primary(ctx)": func() (int, error) { return dbm.One[int](dbm.Primary(ctx), m, serverPort) },
		"write with RETURNING": func() (int, error) {
			return dbm.One[int](ctx, m, "INSERT INTO replicas_routing VALUES (1) RETURNING inet_server_port()")
		},
		"NotIdempotent": func() (int, error) { return dbm.One[int](dbm.NotIdempotent(ctx), m, serverPort) },
		"transaction": func() (port int, err error) {
			err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
				port, err = dbm.One[int](ctx, tx, serverPort)
				return err
			})
			return port, err
		},
		"BeginTx": func() (int, error) {
			tx, err := m.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
			if err != nil {
				return 0, err
			}
			defer tx.Rollback()
			return dbm.One[int](ctx, tx, serverPort)
		},
		"pinned Conn": func() (int, error) {
			c, err := m.Conn(ctx)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			return dbm.One[int](ctx, c, serverPort)
		},
	} {
		if port, err := run(); err != nil || port != primary {
			t.Errorf("%s ran on port %d (%v); want the primary's, %d", name, port, err, primary)
		}
	}
	if _, err := m.Exec(ctx, "DROP TABLE replicas_routing"); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if len(st.Nodes) != 3 || !st.Nodes[0].Writer || st.Nodes[0].Role != "primary" || st.Nodes[1].Role != "replica" {
		t.Fatalf("Stats().Nodes = %+v; want the primary (writer) then two replicas", st.Nodes)
	}
	if st.Nodes[0].Writes != 7 || st.Nodes[0].Reads != 1 || st.Nodes[1].Reads+st.Nodes[2].Reads < reads {
		t.Errorf("per-node counts: %+v", st.Nodes)
	}
	if want := st.Nodes[0].Pool.Statements + st.Nodes[1].Pool.Statements + st.Nodes[2].Pool.Statements; st.Statements != want || want < reads {
		t.Errorf("Stats().Statements = %d; want the nodes' sum %d (>= %d)", st.Statements, want, reads)
	}
	if want := st.Nodes[0].Pool.AcquireWait.Count + st.Nodes[1].Pool.AcquireWait.Count + st.Nodes[2].Pool.AcquireWait.Count; st.AcquireWait.Count != want || want < reads {
		t.Errorf("Stats().AcquireWait.Count = %d; want the nodes' sum %d (>= %d)", st.AcquireWait.Count, want, reads)
	}
	if want := st.Nodes[0].Pool.ConnectAttempts + st.Nodes[1].Pool.ConnectAttempts + st.Nodes[2].Pool.ConnectAttempts; st.ConnectAttempts != want || want < 3 {
		t.Errorf("Stats().ConnectAttempts = %d; want the nodes' sum %d (>= 3)", st.ConnectAttempts, want)
	}
	if st.ProbeState != dbm.ProbeUp {
		t.Errorf("Stats().ProbeState = %q; want the writer's, %q", st.ProbeState, dbm.ProbeUp)
	}

	t.Run("least-in-use", func(t *testing.T) {
		lcfg := cfg
		lcfg.ReplicaPolicy = dbm.ReplicaLeastInUse
		m := openCluster(t, lcfg)
		waitNodes(t, m, "all in use", allInUse(cfg.ReplicaMaxLag))
		rows, err := m.Query(ctx, serverPort) // holds a connection of one replica
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		var held int
		if err := rows.Scan(&held); err != nil {
			t.Fatal(err)
		}
		counts := portCounts(t, ctx, m, 20)
		if counts[held] != 0 || counts[primary] != 0 {
			t.Errorf("with replica %d's connection held, reads went %v; want all on the other replica", held, counts)
		}
		rows.Close()
		counts = portCounts(t, ctx, m, 100)
		t.Logf("least-in-use, 100 sequential reads with nothing held: %v", counts)
		if counts[r1] == 0 || counts[r2] == 0 {
			t.Errorf("idle replicas do not share reads: %v", counts)
		}

		// 8 goroutines at once: the load spreads over both replicas.
		var mu sync.Mutex
		total := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c := map[int]int{}
				for range 250 {
					port, err := dbm.One[int](ctx, m, serverPort)
					if err != nil {
						t.Error(err)
						return
					}
					c[port]++
				}
				mu.Lock()
				defer mu.Unlock()
				for p, n := range c {
					total[p] += n
				}
			})
		}
		wg.Wait()
		t.Logf("least-in-use, 8 goroutines x 250 reads: primary %d, replica 1 %d, replica 2 %d", total[primary], total[r1], total[r2])
		if total[primary] != 0 || total[r1] < 200 || total[r2] < 200 {
			t.Errorf("concurrent reads went %v; want both replicas used (at least 10%% each), none on the primary", total)
		}
	})
}

// TestReplicasLagBoundAndHealth: a replica whose replay is paused
// (pg_wal_replay_pause()) while the primary writes is taken out of reads
// once its lag passes ReplicaMaxLag, and back once it catches up; a replica
// that stops is taken out, and back once it answers again; a replica down
// when the manager starts is taken into use once it starts.
func TestReplicasLagBoundAndHealth(t *testing.T) {
	t.Parallel()
	rs := startReplicaSet(t, 2, nil)
	r1, r2 := rs.replicas[0], rs.replicas[1]
	if err := r2.Stop("fast"); err != nil { // down at start
		t.Fatal(err)
	}
	cfg := rs.config()
	cfg.ReplicaMaxLag = 500 * time.Millisecond
	m := openCluster(t, cfg)
	ctx := t.Context()
	st := m.Stats()
	if st.Nodes[2].Healthy || st.Nodes[2].LastError == "" {
		t.Errorf("replica down at start: %+v; want unhealthy with its error", st.Nodes[2])
	}
	waitNodes(t, m, "replica 1 in use", func(n []dbm.NodeStats) bool { return n[1].Healthy && n[1].Lag >= 0 && n[1].Lag < cfg.ReplicaMaxLag })
	if c := portCounts(t, ctx, m, 50); c[r1.Port] != 50 {
		t.Fatalf("with replica 2 down, reads went %v; want all on replica 1 (%d)", c, r1.Port)
	}

	if err := r2.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, m, "replica 2 in use after it started", allInUse(cfg.ReplicaMaxLag))
	if c := portCounts(t, ctx, m, 50); c[r1.Port] == 0 || c[r2.Port] == 0 {
		t.Fatalf("after replica 2 started, reads went %v; want both replicas", c)
	}

	// Pause replica 1's replay and write on the primary: its lag grows.
	r1db := r1.Open(t)
	if _, err := r1db.ExecContext(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	pdb := rs.primary.Open(t)
	if _, err := pdb.ExecContext(ctx, "CREATE TABLE replicas_lag (id int); INSERT INTO replicas_lag VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, m, "replica 1 over the lag bound", func(n []dbm.NodeStats) bool { return n[1].Lag > cfg.ReplicaMaxLag })
	if c := portCounts(t, ctx, m, 50); c[r2.Port] != 50 {
		t.Fatalf("with replica 1 over the lag bound, reads went %v; want all on replica 2 (%d)", c, r2.Port)
	}
	if st := m.Stats(); st.Nodes[1].LagBytes == 0 || !st.Nodes[1].Healthy {
		t.Errorf("paused replica: %+v; want healthy with bytes of lag", st.Nodes[1])
	}
	if _, err := r1db.ExecContext(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, m, "replica 1 caught up", allInUse(cfg.ReplicaMaxLag))

	// A replica that stops is taken out; reads go on, on the other one.
	if err := r2.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, m, "replica 2 taken out", func(n []dbm.NodeStats) bool { return !n[2].Healthy })
	if c := portCounts(t, ctx, m, 50); c[r1.Port] != 50 {
		t.Fatalf("with replica 2 stopped, reads went %v; want all on replica 1", c)
	}
	if err := r2.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, m, "replica 2 back", allInUse(cfg.ReplicaMaxLag))
	if _, err := pdb.ExecContext(ctx, "DROP TABLE replicas_lag"); err != nil {
		t.Fatal(err)
	}

	// A read sent to a replica that stopped a moment ago, before a check
	// noticed (checks once a minute here), runs again on another server:
	// none fails.
	slow := cfg
	slow.ReplicaCheckInterval, slow.ReplicaMaxLag = time.Minute, 10*time.Minute
	ms := openFresh(t, slow, pdb, r1db, r2.Open(t))
	if c := portCounts(t, ctx, ms, 20); c[r2.Port] == 0 {
		t.Fatalf("reads went %v; want some on replica 2", c)
	}
	if err := r2.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	if c := portCounts(t, ctx, ms, 20); c[r2.Port] != 0 || c[r1.Port] == 0 {
		t.Fatalf("after replica 2 stopped, reads went %v; want them on replica 1", c)
	}
	if st := ms.Stats(); !st.Nodes[2].Healthy {
		t.Fatalf("a check noticed replica 2 stopped (%+v): the reads above did not test rerouting", st.Nodes[2])
	}
}

// openFresh opens a manager on cfg, whose checks are too far apart to
// wait for, once its first check finds every replica in use. That check
// judges a replica by the primary's position at the same moment: a
// replica that has not yet replayed the last write (or a WAL record the
// server wrote of its own accord) counts as lagging until the next check.
// So the manager is opened after the replicas have caught up with the
// primary, and opened again if a record came in between.
func openFresh(t *testing.T, cfg dbm.Config, primary *sql.DB, replicas ...*sql.DB) *dbm.Manager {
	t.Helper()
	ctx := t.Context()
	for try := 1; ; try++ {
		var lsn string
		if err := primary.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		for i, r := range replicas {
			waitFor(t, fmt.Sprintf("replica %d replays %s", i+1, lsn), func() bool {
				var ok bool
				err := r.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok)
				return err == nil && ok
			})
		}
		m, err := dbm.New(ctx, cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		nodes := m.Stats().Nodes
		if allInUse(cfg.ReplicaMaxLag)(nodes) || try == 5 {
			closeAtEnd(t, m)
			if try == 5 {
				t.Fatalf("5 managers opened after the replicas caught up, none found them all in use: %+v", nodes)
			}
			return m
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Logf("opened again: the first check found %+v", nodes)
	}
}

// TestReplicasReadYourWrites: with every replica applying WAL 300ms late
// (recovery_min_apply_delay), 1,000 writes each followed at once by a read
// under ReadYourWrites see their write every time; the same without it
// reads stale values (the replicas do lag, and reads do go to them); a
// Token taken after a write sends a read to a replica once one has
// replayed it.
func TestReplicasReadYourWrites(t *testing.T) {
	t.Parallel()
	rs := startReplicaSet(t, 2, nil, pgtest.WithSetting("recovery_min_apply_delay", "300ms"))
	cfg := rs.config()
	m := openCluster(t, cfg)
	waitNodes(t, m, "all in use", allInUse(cfg.ReplicaMaxLag))
	ctx := t.Context()
	if _, err := m.Exec(ctx, "CREATE TABLE replicas_ryw (id int PRIMARY KEY, v int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Exec(context.Background(), "DROP TABLE replicas_ryw") })
	if _, err := m.Exec(ctx, "INSERT INTO replicas_ryw VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	type row struct {
		V    int `db:"v"`
		Port int `db:"port"`
	}
	const read = "SELECT v, inet_server_port() AS port FROM replicas_ryw WHERE id = 1"
	waitNodes(t, m, "replicas caught up with the table", allInUse(cfg.ReplicaMaxLag))
	time.Sleep(time.Second) // the delay applies to the INSERT too

	// Without the token: the replicas lag, and reads go to them.
	stale := 0
	for i := 1; i <= 20; i++ {
		if _, err := m.Exec(ctx, "UPDATE replicas_ryw SET v = $1 WHERE id = 1", -i); err != nil {
			t.Fatal(err)
		}
		r, err := dbm.One[row](ctx, m, read)
		if err != nil {
			t.Fatal(err)
		}
		if r.V != -i {
			stale++
		}
	}
	if stale == 0 {
		t.Fatal("without ReadYourWrites no read was stale: the replicas do not lag, and the test below proves nothing")
	}
	t.Logf("without a token: %d of 20 reads right after a write were stale", stale)

	const n = 1000
	rctx := dbm.ReadYourWrites(ctx)
	stale = 0
	onReplica := 0
	start := time.Now()
	for i := 1; i <= n; i++ {
		if _, err := m.Exec(rctx, "UPDATE replicas_ryw SET v = $1 WHERE id = 1", i); err != nil {
			t.Fatal(err)
		}
		r, err := dbm.One[row](rctx, m, read)
		if err != nil {
			t.Fatal(err)
		}
		if r.V != i {
			stale++
		}
		if r.Port != rs.primary.Port {
			onReplica++
		}
	}
	t.Logf("ReadYourWrites: %d write-then-read pairs in %s: %d stale reads, %d reads on a replica", n, time.Since(start).Round(time.Millisecond), stale, onReplica)
	if stale != 0 {
		t.Errorf("%d of %d reads under ReadYourWrites were stale; want 0", stale, n)
	}

	// A committed transaction moves the token too. First wait until the
	// replicas have replayed the token so far, so that without the commit
	// moving it the reads below would go to a lagging replica.
	deadline := time.Now().Add(clusterBound)
	for {
		r, err := dbm.One[row](rctx, m, read)
		if err != nil {
			t.Fatal(err)
		}
		if r.Port != rs.primary.Port {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads under ReadYourWrites never reached a replica in %s", clusterBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := n + 1; i <= n+20; i++ {
		if err := m.WithTx(rctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE replicas_ryw SET v = $1 WHERE id = 1", -i)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if r, err := dbm.One[row](rctx, m, read); err != nil || r.V != -i {
			t.Fatalf("read after WithTx under ReadYourWrites: v=%d (%v); want %d", r.V, err, -i)
		}
	}

	// An explicit Token: at once, the read goes to the primary; once a
	// replica has replayed the write, to that replica.
	if _, err := m.Exec(ctx, "UPDATE replicas_ryw SET v = $1 WHERE id = 1", n+1); err != nil {
		t.Fatal(err)
	}
	tok, err := m.Token(ctx)
	if err != nil || tok.IsZero() {
		t.Fatalf("Token: %v, %v", tok, err)
	}
	parsed, err := dbm.ParseToken(tok.String())
	if err != nil || parsed != tok {
		t.Fatalf("ParseToken(%q) = %v, %v", tok.String(), parsed, err)
	}
	tctx := dbm.WithToken(ctx, parsed)
	deadline = time.Now().Add(clusterBound)
	for {
		r, err := dbm.One[row](tctx, m, read)
		if err != nil {
			t.Fatal(err)
		}
		if r.V != n+1 {
			t.Fatalf("read with a token saw v=%d; want %d", r.V, n+1)
		}
		if r.Port != rs.primary.Port {
			break // a replica that replayed the write served it
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads with a token never reached a replica in %s", clusterBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasConcurrentReadYourWrites: the same guarantee with 8
// goroutines, each with a ReadYourWrites context of its own, writing and
// reading their own rows at once.
func TestReplicasConcurrentReadYourWrites(t *testing.T) {
	t.Parallel()
	rs := startReplicaSet(t, 1, nil, pgtest.WithSetting("recovery_min_apply_delay", "200ms"))
	cfg := rs.config()
	m := openCluster(t, cfg)
	waitNodes(t, m, "all in use", allInUse(cfg.ReplicaMaxLag))
	ctx := t.Context()
	if _, err := m.Exec(ctx, "CREATE TABLE replicas_ryw_conc (id int PRIMARY KEY, v int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Exec(context.Background(), "DROP TABLE replicas_ryw_conc") })
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rctx := dbm.ReadYourWrites(ctx)
			if _, err := m.Exec(rctx, "INSERT INTO replicas_ryw_conc VALUES ($1, 0)", w); err != nil {
				errs <- err
				return
			}
			for i := 1; i <= each; i++ {
				if _, err := m.Exec(rctx, "UPDATE replicas_ryw_conc SET v = $1 WHERE id = $2", i, w); err != nil {
					errs <- err
					return
				}
				v, err := dbm.One[int](rctx, m, "SELECT v FROM replicas_ryw_conc WHERE id = $1", w)
				if err != nil {
					errs <- err
					return
				}
				if v != i {
					errs <- fmt.Errorf("worker %d: read v=%d after writing %d", w, v, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReplicasSingleServerUnchanged: without ReplicaHosts there are no
// nodes, Token is the zero Token, and the routing contexts change nothing.
func TestReplicasSingleServerUnchanged(t *testing.T) {
	m := newSQLite(t)
	ctx := dbm.ReadYourWrites(dbm.Primary(context.Background()))
	if _, err := m.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	if n, err := dbm.One[int](ctx, m, "SELECT count(*) FROM t"); err != nil || n != 0 {
		t.Fatalf("One = %d, %v", n, err)
	}
	if tok, err := m.Token(ctx); err != nil || !tok.IsZero() || tok.String() != "" {
		t.Errorf("Token on one server = %q, %v; want the zero Token", tok, err)
	}
	if st := m.Stats(); st.Nodes != nil {
		t.Errorf("Stats().Nodes = %+v; want nil for one server", st.Nodes)
	}
	var nilM *dbm.Manager
	if _, err := nilM.Token(ctx); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("nil Manager Token: %v; want ErrInvalidArgument", err)
	}
	if _, err := dbm.ParseToken("nope"); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("ParseToken(nope): %v; want ErrInvalidArgument", err)
	}
	if tok, err := dbm.ParseToken(""); err != nil || !tok.IsZero() {
		t.Errorf("ParseToken(\"\") = %v, %v; want the zero Token", tok, err)
	}
	if tok, err := dbm.ParseToken("16/B374D848"); err != nil || tok.String() != "16/B374D848" || dbm.TokenOf(dbm.WithToken(context.Background(), tok)) != tok {
		t.Errorf("ParseToken round trip: %v, %v", tok, err)
	}
}
