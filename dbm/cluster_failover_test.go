package dbm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// TestReplicasFailover: a writer inserts numbered rows through the manager
// while the primary crashes (pg_ctl stop -m immediate) and its standby is
// promoted (pg_promote()). The manager finds the new primary by itself and
// the writes resume; the time from the promotion to the first write
// acknowledged on the new primary is logged (docs/replicas.md) and bounded
// by clusterBound. Afterwards, on the new primary, every acknowledged row
// is there exactly once, no row is there twice, and no row whose write
// failed without ErrOutcomeUnknown is there at all.
//
// The standby is synchronous (synchronous_standby_names, and the primary
// runs with synchronous_commit on): with asynchronous replication a crash
// of the primary may lose commits it acknowledged, by PostgreSQL's design
// (docs/replicas.md#failover).
func TestReplicasFailover(t *testing.T) {
	t.Parallel()
	primary := pgtest.Start(t, pgtest.OnMissing(missingServer), pgtest.Durable())
	standby := primary.StartReplica(t, pgtest.OnMissing(missingServer))
	ctx := t.Context()
	pdb := primary.Open(t)
	if _, err := pdb.ExecContext(ctx, "ALTER SYSTEM SET synchronous_standby_names = '*'"); err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.ExecContext(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(clusterBound)
	for {
		var sync int
		if err := pdb.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if sync == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby never became synchronous")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = pdb.Close()

	cfg := dbm.Config{Host: primary.Host, Port: primary.Port, User: primary.Superuser, Password: primary.Password,
		Database: "postgres", SSLMode: "disable", ReplicaHosts: []string{standby.Addr()}} // default check interval
	logs := &logBuffer{}
	m := openCluster(t, cfg, dbm.WithLogger(logs.logger()))
	waitNodes(t, m, "all in use", allInUse(dbm.DefaultReplicaMaxLag))
	if _, err := m.Exec(ctx, "CREATE TABLE replicas_failover (id int NOT NULL)"); err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		id  int
		at  time.Time
		err error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
	)
	acked := func(after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.err == nil && o.at.After(after) {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for id := 1; ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := m.Exec(wctx, "INSERT INTO replicas_failover VALUES ($1)", id)
			cancel()
			mu.Lock()
			outcomes = append(outcomes, outcome{id, time.Now(), err})
			mu.Unlock()
			if err != nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(clusterBound)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: still not %s", clusterBound, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("50 writes acknowledged", func() bool { return acked(time.Time{}) >= 50 })

	stopped := time.Now()
	if err := primary.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	waitFor("50 writes acknowledged on the new primary", func() bool { return acked(promoted) >= 50 })
	close(stop)
	wg.Wait()

	var firstAfter time.Time
	failed, unknown := map[int]bool{}, map[int]bool{}
	ackedIDs := map[int]bool{}
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			ackedIDs[o.id] = true
			if firstAfter.IsZero() && o.at.After(promoted) {
				firstAfter = o.at
			}
		case errors.Is(o.err, dbm.ErrOutcomeUnknown):
			unknown[o.id] = true
		default:
			if !errors.Is(o.err, dbm.ErrConnection) && !errors.Is(o.err, dbm.ErrReadOnly) && !errors.Is(o.err, dbm.ErrTimeout) {
				t.Errorf("write %d failed with %v; want a connection error during the failover", o.id, o.err)
			}
			failed[o.id] = true
		}
	}
	t.Logf("failover: pg_ctl stop -m immediate took %s, pg_promote() %s; first write acknowledged %s after the promotion returned (%s after the crash began); %d writes acknowledged, %d failed, %d of unknown outcome",
		down.Sub(stopped).Round(time.Millisecond), promoted.Sub(down).Round(time.Millisecond),
		firstAfter.Sub(promoted).Round(time.Millisecond), firstAfter.Sub(stopped).Round(time.Millisecond),
		len(ackedIDs), len(failed), len(unknown))

	sdb := standby.Open(t)
	rows, err := sdb.QueryContext(ctx, "SELECT id, count(*) FROM replicas_failover GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	present := map[int]int{}
	for rows.Next() {
		var id, n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		present[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range ackedIDs {
		if present[id] != 1 {
			t.Errorf("acknowledged write %d is on the new primary %d times; want 1", id, present[id])
		}
	}
	for id, n := range present {
		if n > 1 {
			t.Errorf("write %d is on the new primary %d times; want at most 1", id, n)
		}
		if failed[id] {
			t.Errorf("write %d failed with an error that says it did not take effect, but it is on the new primary", id)
		}
	}
	st := m.Stats()
	if !st.Nodes[1].Writer || st.Nodes[1].Role != "primary" || st.Nodes[0].Healthy {
		t.Errorf("after the failover Stats().Nodes = %+v; want the promoted standby as the writer, the old primary out", st.Nodes)
	}
	if got := logs.lines("dbm: writes move to a new primary", "from="+primary.Addr(), "to="+standby.Addr()); len(got) != 1 {
		t.Errorf("log lines about the failover: %q; want one\nlog:\n%s", got, logs)
	}
	if got := logs.lines("dbm: server taken out of use", primary.Addr()); len(got) != 1 {
		t.Errorf("log lines about the old primary taken out: %q; want one", got)
	}
	if strings.Contains(logs.String(), primary.Password) || strings.Contains(st.Nodes[0].LastError, primary.Password) {
		t.Error("the log or Stats().Nodes[0].LastError holds the password")
	}
	// Transactions go to the new primary too.
	if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO replicas_failover VALUES (0)")
		return err
	}); err != nil {
		t.Errorf("WithTx after the failover: %v", err)
	}
	if _, err := m.Exec(ctx, "DROP TABLE replicas_failover"); err != nil {
		t.Error(err)
	}
}
