package dbmprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmprom"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// TestCollectorReportsNodes: a manager with a replica reports each
// server's health, role, writer, lag and reads with the label node; a
// manager with one server reports no node series (busyManager's scrape in
// TestCollectorReportsStats has none).
func TestCollectorReportsNodes(t *testing.T) {
	primary := pgtest.Start(t)
	replica := primary.StartReplica(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m, err := dbm.New(ctx, dbm.Config{Host: primary.Host, Port: primary.Port, User: primary.Superuser, Password: primary.Password,
		Database: "postgres", SSLMode: "disable", ReplicaHosts: []string{replica.Addr()}, ReplicaCheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitReplica(ctx, t, m)
	for range 3 {
		if _, err := dbm.One[int](ctx, m, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(dbmprom.NewCollector(m))
	want := `
# HELP dbm_node_up 1 when the server answers its health checks and is in use, else 0.
# TYPE dbm_node_up gauge
dbm_node_up{node="` + primary.Addr() + `"} 1
dbm_node_up{node="` + replica.Addr() + `"} 1
# HELP dbm_node_writer 1 for the server writes go to now, else 0.
# TYPE dbm_node_writer gauge
dbm_node_writer{node="` + primary.Addr() + `"} 1
dbm_node_writer{node="` + replica.Addr() + `"} 0
# HELP dbm_node_primary 1 when the server said it is a primary (not in recovery) at its last check, else 0.
# TYPE dbm_node_primary gauge
dbm_node_primary{node="` + primary.Addr() + `"} 1
dbm_node_primary{node="` + replica.Addr() + `"} 0
# HELP dbm_node_reads_total Total number of statements routed to the server as reads.
# TYPE dbm_node_reads_total counter
dbm_node_reads_total{node="` + primary.Addr() + `"} 0
dbm_node_reads_total{node="` + replica.Addr() + `"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dbm_node_up", "dbm_node_writer", "dbm_node_primary", "dbm_node_reads_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "dbm_node_lag_seconds", "dbm_node_lag_bytes", "dbm_node_in_use_connections", "dbm_node_failed_checks_total"); err != nil || n != 8 {
		t.Errorf("lag, in-use and check series: %d, %v; want 2 servers x 4", n, err)
	}

	// The same servers through pgx: the checks and the routing do not
	// depend on lib/pq.
	pm, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverPgx, Host: primary.Host, Port: primary.Port, User: primary.Superuser, Password: primary.Password,
		Database: "postgres", SSLMode: "disable", ReplicaHosts: []string{replica.Addr()}, ReplicaCheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	waitReplica(ctx, t, pm)
	for _, tc := range []struct {
		ctx  context.Context
		want int
	}{{ctx, replica.Port}, {dbm.Primary(ctx), primary.Port}} {
		if port, err := dbm.One[int](tc.ctx, pm, "SELECT inet_server_port()"); err != nil || port != tc.want {
			t.Errorf("pgx: read ran on %d (%v); want %d", port, err, tc.want)
		}
	}
}

// waitReplica waits until m's replica is in use, within ctx.
func waitReplica(ctx context.Context, t *testing.T, m *dbm.Manager) {
	t.Helper()
	for !m.Stats().Nodes[1].Healthy || m.Stats().Nodes[1].Lag < 0 {
		if ctx.Err() != nil {
			t.Fatalf("the replica never came into use: %+v", m.Stats().Nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
