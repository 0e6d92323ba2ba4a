package dbmprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// nodeMetric maps one number of a [dbm.NodeStats] to a Prometheus metric
// with the label node="host:port".
type nodeMetric struct {
	name  string // without the namespace
	help  string
	kind  prometheus.ValueType
	value func(*dbm.NodeStats) float64
}

// nodeMetrics lists what a scrape reports for each server of a manager
// with replicas (Config.ReplicaHosts); a manager with one server has none.
var nodeMetrics = []nodeMetric{
	{"node_up", "1 when the server answers its health checks and is in use, else 0.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return b2f(n.Healthy) }},
	{"node_primary", "1 when the server said it is a primary (not in recovery) at its last check, else 0.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return b2f(n.Role == "primary") }},
	{"node_writer", "1 for the server writes go to now, else 0.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return b2f(n.Writer) }},
	{"node_lag_seconds", "How far the replica is behind the primary, at most, in seconds; -1 when unknown, 0 for the primary.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 {
		if n.Lag < 0 {
			return -1
		}
		return n.Lag.Seconds()
	}},
	{"node_lag_bytes", "Bytes of WAL the replica had not replayed at its last check.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return float64(n.LagBytes) }},
	{"node_in_use_connections", "Connections of the server's pool in use.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return float64(n.Pool.InUse) }},
	{"node_open_connections", "Connections of the server's pool, in use and idle.", prometheus.GaugeValue, func(n *dbm.NodeStats) float64 { return float64(n.Pool.OpenConnections) }},
	{"node_reads_total", "Total number of statements routed to the server as reads.", prometheus.CounterValue, func(n *dbm.NodeStats) float64 { return float64(n.Reads) }},
	{"node_writes_total", "Total number of statements, transactions and pinned connections routed to the server as writes.", prometheus.CounterValue, func(n *dbm.NodeStats) float64 { return float64(n.Writes) }},
	{"node_failed_checks_total", "Total number of health checks the server did not answer.", prometheus.CounterValue, func(n *dbm.NodeStats) float64 { return float64(n.FailedChecks) }},
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// nodeDescs makes the descriptors of nodeMetrics.
func nodeDescs(o options) []*prometheus.Desc {
	descs := make([]*prometheus.Desc, len(nodeMetrics))
	for i, mt := range nodeMetrics {
		descs[i] = prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", mt.name), mt.help, []string{"node"}, o.labels)
	}
	return descs
}

// collectNodes sends the per-server metrics of s.
func (c *Collector) collectNodes(ch chan<- prometheus.Metric, s *dbm.Stats) {
	for i := range s.Nodes {
		n := &s.Nodes[i]
		for j, mt := range nodeMetrics {
			ch <- prometheus.MustNewConstMetric(c.nodeDescs[j], mt.kind, mt.value(n), n.Addr)
		}
	}
}
