package dbm

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Replica routing policies, the values of Config.ReplicaPolicy.
const (
	// ReplicaRoundRobin sends each read to the next replica in turn.
	ReplicaRoundRobin = "round-robin"
	// ReplicaLeastInUse sends each read to the replica with the fewest
	// connections in use, which favours the replica that answers fastest.
	ReplicaLeastInUse = "least-in-use"
)

// Defaults of the replica settings of [Config].
const (
	// DefaultReplicaMaxLag is the default bound on a replica's lag.
	DefaultReplicaMaxLag = time.Second
	// DefaultReplicaCheckInterval is how often, by default, each server's
	// role and replay position are checked.
	DefaultReplicaCheckInterval = 200 * time.Millisecond
)

// nodeAddr is one server of a primary-and-replicas setup.
type nodeAddr struct {
	host string
	port int
}

func (a nodeAddr) String() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// validateReplicas checks the replica settings of c (defaults applied).
func (c Config) validateReplicas() error {
	if c.ReplicaMaxLag < 0 {
		return configErr("ReplicaMaxLag", "must not be negative", c.ReplicaMaxLag)
	}
	if c.ReplicaCheckInterval < 0 {
		return configErr("ReplicaCheckInterval", "must not be negative", c.ReplicaCheckInterval)
	}
	if c.ReplicaPolicy != "" && c.ReplicaPolicy != ReplicaRoundRobin && c.ReplicaPolicy != ReplicaLeastInUse {
		return configErr("ReplicaPolicy", fmt.Sprintf("unknown policy (want %q or %q)", ReplicaRoundRobin, ReplicaLeastInUse), c.ReplicaPolicy)
	}
	if len(c.ReplicaHosts) == 0 {
		return nil
	}
	if !isPostgres(c.Driver) {
		return configErr("ReplicaHosts", "replicas are supported for PostgreSQL only (driver postgres or pgx), not "+c.Driver, strings.Join(c.ReplicaHosts, ","))
	}
	if c.DSN != "" {
		return configErr("ReplicaHosts", "replicas need the primary as Host and Port (DB_HOST, DB_PORT), not a DSN", strings.Join(c.ReplicaHosts, ","))
	}
	if c.Pooler != "" {
		return configErr("ReplicaHosts", "replicas cannot be used through a pooler: the manager must reach each server itself to check its role and lag", strings.Join(c.ReplicaHosts, ","))
	}
	_, err := c.replicaAddrs()
	return err
}

// replicaAddrs parses ReplicaHosts; every entry must be a distinct server,
// none the primary.
func (c Config) replicaAddrs() ([]nodeAddr, error) {
	seen := map[string]bool{nodeAddr{c.Host, c.Port}.String(): true}
	addrs := make([]nodeAddr, 0, len(c.ReplicaHosts))
	for _, entry := range c.ReplicaHosts {
		a, reason := parseReplicaHost(c.Driver, strings.TrimSpace(entry), c.Port)
		if reason == "" && seen[a.String()] {
			reason = "listed twice, or the primary itself"
		}
		if reason != "" {
			return nil, configErr("ReplicaHosts", fmt.Sprintf("entry %q: %s", entry, reason), strings.Join(c.ReplicaHosts, ","))
		}
		seen[a.String()] = true
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// parseReplicaHost parses "host", "host:port" or "[v6]:port"; it returns
// what is wrong, or "".
func parseReplicaHost(driver, entry string, defPort int) (nodeAddr, string) {
	if entry == "" {
		return nodeAddr{}, "empty host"
	}
	host, port := entry, defPort
	if strings.HasPrefix(entry, "[") || strings.Count(entry, ":") == 1 {
		h, p, err := net.SplitHostPort(entry)
		if err != nil {
			return nodeAddr{}, "not host or host:port"
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nodeAddr{}, "port out of range (want 1-65535)"
		}
		host, port = h, n
	}
	if strings.HasPrefix(host, "/") {
		return nodeAddr{}, "a Unix socket cannot be a replica here; use host:port"
	}
	if reason := checkHost(driver, host); reason != "" {
		return nodeAddr{}, reason
	}
	return nodeAddr{host, port}, ""
}
