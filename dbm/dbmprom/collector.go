// Package dbmprom exports a [dbm.Manager]'s statistics to Prometheus.
//
// Register one [Collector] per manager:
//
//	prometheus.MustRegister(dbmprom.NewCollector(m, dbmprom.WithConstLabels(prometheus.Labels{"db": "primary"})))
//
// Every scrape takes one [dbm.Manager.Stats] snapshot and reports it: the
// pool's gauges and counters from database/sql, and the manager's counters
// of statements, transactions and errors by class, and for a manager with
// replicas each server's health, role, lag and pool (label node). Durations are in
// seconds and counters end in _total, as Prometheus names them. The metric
// names and their meaning are listed in docs/observability.md.
//
// This package is separate so that only programs that import it compile
// the Prometheus client; package dbm does not depend on it.
package dbmprom

import (
	"errors"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// metric maps one number of [dbm.Stats] to a Prometheus metric.
type metric struct {
	name  string // without the namespace
	help  string
	kind  prometheus.ValueType
	value func(*dbm.Stats) float64
}

// metrics lists what a scrape reports. A field added to dbm.Stats is one
// line here.
var metrics = []metric{
	// database/sql's pool.
	{"pool_max_open_connections", "Maximum number of open connections to the database (Config.MaxOpenConns).", prometheus.GaugeValue, func(s *dbm.Stats) float64 { return float64(s.MaxOpenConnections) }},
	{"pool_open_connections", "Number of established connections, in use and idle.", prometheus.GaugeValue, func(s *dbm.Stats) float64 { return float64(s.OpenConnections) }},
	{"pool_in_use_connections", "Number of connections currently in use.", prometheus.GaugeValue, func(s *dbm.Stats) float64 { return float64(s.InUse) }},
	{"pool_idle_connections", "Number of idle connections.", prometheus.GaugeValue, func(s *dbm.Stats) float64 { return float64(s.Idle) }},
	{"pool_waits_total", "Total number of times a statement waited for a free connection.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.WaitCount) }},
	{"pool_wait_seconds_total", "Total time spent waiting for a free connection, in seconds.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return s.WaitDuration.Seconds() }},
	{"pool_max_idle_closed_total", "Total number of connections closed because of Config.MaxIdleConns.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.MaxIdleClosed) }},
	{"pool_max_idle_time_closed_total", "Total number of connections closed because of Config.ConnMaxIdleTime.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.MaxIdleTimeClosed) }},
	{"pool_max_lifetime_closed_total", "Total number of connections closed because of Config.ConnMaxLifetime.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.MaxLifetimeClosed) }},
	// The manager's counters.
	{"statements_total", "Total number of statements run, successful or not.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Statements) }},
	{"slow_statements_total", "Total number of statements that took at least Config.SlowQueryThreshold.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.SlowStatements) }},
	{"transactions_total", "Total number of transactions begun.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Transactions) }},
	{"commits_total", "Total number of transactions committed.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Commits) }},
	{"rollbacks_total", "Total number of transactions rolled back, by the caller or by WithTx.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Rollbacks) }},
	{"retries_total", "Total number of statements and WithTx functions run again after a retryable error.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Retries) }},
	{"leaks_detected_total", "Total number of rows and transactions open longer than Config.LeakThreshold.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.LeaksDetected) }},
	{"leaks_reclaimed_total", "Total number of rows and transactions dropped without being closed and closed by the garbage collector's cleanup.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.LeaksReclaimed) }},
	// The manager's queue and prober (docs/reliability.md#fair-queue, #fail-fast).
	{"pool_queue_length", "Number of callers waiting now for their turn at a connection in the manager's fair queue.", prometheus.GaugeValue, func(s *dbm.Stats) float64 { return float64(s.QueueLength) }},
	{"probe_down", "1 while the database is marked down: calls fail fast and one probe at a time checks it; 0 otherwise.", prometheus.GaugeValue, func(s *dbm.Stats) float64 {
		if s.ProbeState == dbm.ProbeDown {
			return 1
		}
		return 0
	}},
	{"probes_total", "Total number of connection attempts made by the prober while the database was down.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.Probes) }},
	{"fast_failures_total", "Total number of calls that failed fast, without dialing, while the database was down.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.FastFailures) }},
	{"connect_attempts_total", "Total number of connections the manager tried to open, probes included.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.ConnectAttempts) }},
	{"leak_collections_total", "Total number of garbage collections forced because a caller waited for a connection while rows or transactions were open.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.LeakCollections) }},
	{"idle_checks_failed_total", "Total number of idle connections that failed the ping before hand-out (Config.ValidateIdleAfter) and were replaced.", prometheus.CounterValue, func(s *dbm.Stats) float64 { return float64(s.IdleChecksFailed) }},
}

// lostCommits are the series of dbm_lost_commits_total, by what the server
// said of a COMMIT whose reply was lost.
var lostCommits = []struct {
	outcome string
	value   func(*dbm.Stats) uint64
}{
	{"committed", func(s *dbm.Stats) uint64 { return s.LostCommitsCommitted }},
	{"rolled_back", func(s *dbm.Stats) uint64 { return s.LostCommitsRolledBack }},
	{"unknown", func(s *dbm.Stats) uint64 { return s.LostCommitsUnknown }},
}

// Collector is a [prometheus.Collector] for one [dbm.Manager]. Make it with
// [NewCollector]; it is safe for concurrent scrapes.
type Collector struct {
	m           *dbm.Manager
	descs       []*prometheus.Desc
	errors      *prometheus.Desc
	lostCommits *prometheus.Desc
	nodeDescs   []*prometheus.Desc // per server, with replicas; see nodes.go
	wait        *prometheus.Desc   // the time-to-connection histogram
}

var _ prometheus.Collector = (*Collector)(nil)

// Option configures a [Collector].
type Option interface{ apply(*options) }

type options struct {
	namespace string
	labels    prometheus.Labels
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithNamespace sets the prefix of every metric name; the default is "dbm"
// (dbm_statements_total, ...). An empty namespace leaves names unprefixed.
func WithNamespace(ns string) Option {
	return optionFunc(func(o *options) { o.namespace = ns })
}

// WithConstLabels adds labels with fixed values to every metric, such as
// {"db": "primary"} to tell two managers apart in one registry.
func WithConstLabels(l prometheus.Labels) Option {
	return optionFunc(func(o *options) { o.labels = l })
}

// NewCollector returns a collector of m's statistics. Register it with a
// [prometheus.Registerer]. Two collectors in one registry need different
// namespaces or const labels. A nil m makes every scrape fail with an error
// (the registry's Gather returns it) rather than panic.
func NewCollector(m *dbm.Manager, opts ...Option) *Collector {
	o := options{namespace: "dbm"}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	c := &Collector{m: m}
	for _, mt := range metrics {
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", mt.name), mt.help, nil, o.labels))
	}
	c.errors = prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", "errors_total"),
		"Total number of failed operations, by error class (see dbm.Class).", []string{"class"}, o.labels)
	c.wait = prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", "acquire_wait_seconds"),
		"Time callers took to get their turn at a connection in the manager's fair queue (0 when one was free), in seconds.", nil, o.labels)
	c.lostCommits = prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", "lost_commits_total"),
		"Total number of COMMITs whose reply was lost, by what the server said when asked (PostgreSQL).", []string{"outcome"}, o.labels)
	c.nodeDescs = nodeDescs(o)
	return c
}

var errNilManager = errors.New("dbmprom: NewCollector was given a nil *dbm.Manager")

// Describe sends the descriptors of every metric the collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.errors
	ch <- c.wait
	ch <- c.lostCommits
	for _, d := range c.nodeDescs {
		ch <- d
	}
}

// Collect takes one [dbm.Manager.Stats] snapshot and sends its metrics.
// dbm_errors_total has one series per error class that has occurred.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.m == nil {
		ch <- prometheus.NewInvalidMetric(c.errors, errNilManager)
		return
	}
	s := c.m.Stats()
	for i, mt := range metrics {
		ch <- prometheus.MustNewConstMetric(c.descs[i], mt.kind, mt.value(&s))
	}
	ch <- prometheus.MustNewConstHistogram(c.wait, s.AcquireWait.Count, s.AcquireWait.Sum.Seconds(), cumulative(s.AcquireWait))
	for _, lc := range lostCommits {
		ch <- prometheus.MustNewConstMetric(c.lostCommits, prometheus.CounterValue, float64(lc.value(&s)), lc.outcome)
	}
	classes := make([]string, 0, len(s.ErrorsByClass))
	for class := range s.ErrorsByClass {
		classes = append(classes, class)
	}
	sort.Strings(classes)
	for _, class := range classes {
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.ErrorsByClass[class]), class)
	}
	c.collectNodes(ch, &s)
}

// cumulative turns the histogram's per-bucket counts into Prometheus's
// cumulative buckets, keyed by upper bound in seconds (+Inf is implied by
// the total count).
func cumulative(h dbm.AcquireHistogram) map[float64]uint64 {
	b := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, bound := range h.Bounds {
		n += h.Counts[i]
		b[bound.Seconds()] = n
	}
	return b
}
