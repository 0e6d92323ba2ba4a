package pgtest

import (
	"context"
	"testing"
	"time"
)

// TestStartReplicaFollowsAndPromotes checks what the replica tests of
// package dbm rely on: a replica made by StartReplica is in recovery, is
// read-only, replays the primary's writes, and accepts writes once
// promoted.
func TestStartReplicaFollowsAndPromotes(t *testing.T) {
	primary := Start(t)
	replica := primary.StartReplica(t)
	if replica.Port == primary.Port || replica.DataDir == primary.DataDir {
		t.Fatalf("replica shares the primary's port or data directory: %+v", replica)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pdb, rdb := primary.Open(t), replica.Open(t)

	var inRecovery bool
	if err := rdb.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("replica pg_is_in_recovery() = %v, %v; want true", inRecovery, err)
	}
	if err := pdb.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("primary pg_is_in_recovery() = %v, %v; want false", inRecovery, err)
	}
	if _, err := rdb.ExecContext(ctx, "CREATE TABLE pgtest_replicas_ro (id int)"); err == nil {
		t.Fatal("a write on the replica succeeded; want read-only")
	}
	if _, err := pdb.ExecContext(ctx, "CREATE TABLE pgtest_replicas_t (id int); INSERT INTO pgtest_replicas_t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	for {
		var id int
		err := rdb.QueryRowContext(ctx, "SELECT id FROM pgtest_replicas_t").Scan(&id)
		if err == nil && id == 42 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the replica never showed the primary's row: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := primary.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	if err := replica.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.ExecContext(ctx, "INSERT INTO pgtest_replicas_t VALUES (43)"); err != nil {
		t.Fatalf("write on the promoted replica: %v", err)
	}
}
