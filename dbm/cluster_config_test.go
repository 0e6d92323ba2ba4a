package dbm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestLoadConfigReplicas reads the replica variables.
func TestLoadConfigReplicas(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_HOST", "db1")
	t.Setenv("DB_REPLICA_HOSTS", "db2, db3:5433,[::1]:6432")
	t.Setenv("DB_REPLICA_MAX_LAG", "2s")
	t.Setenv("DB_REPLICA_POLICY", "least-in-use")
	t.Setenv("DB_REPLICA_CHECK_INTERVAL", "100ms")
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"db2", " db3:5433", "[::1]:6432"}; !slices.Equal(cfg.ReplicaHosts, want) {
		t.Errorf("ReplicaHosts = %q, want %q", cfg.ReplicaHosts, want)
	}
	if cfg.ReplicaMaxLag != 2*time.Second || cfg.ReplicaPolicy != dbm.ReplicaLeastInUse || cfg.ReplicaCheckInterval != 100*time.Millisecond {
		t.Errorf("replica settings = %v %q %v", cfg.ReplicaMaxLag, cfg.ReplicaPolicy, cfg.ReplicaCheckInterval)
	}
	if s := cfg.String(); !strings.Contains(s, "ReplicaHosts:db2, db3:5433,[::1]:6432") {
		t.Errorf("String() = %s; want the replica hosts", s)
	}
}

// TestReplicaConfigErrors: every bad replica setting is an ErrConfig that
// names its variable, from LoadConfig and from New.
func TestReplicaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name            string
		env             map[string]string
		varName, reason string
	}{
		{"mysql", map[string]string{"DB_DRIVER": "mysql", "DB_REPLICA_HOSTS": "db2"}, "DB_REPLICA_HOSTS", "PostgreSQL only"},
		{"sqlite", map[string]string{"DB_DRIVER": "sqlite", "DB_NAME": ":memory:", "DB_REPLICA_HOSTS": "db2"}, "DB_REPLICA_HOSTS", "PostgreSQL only"},
		{"dsn", map[string]string{"DB_DSN": "postgres://u@db1/app", "DB_REPLICA_HOSTS": "db2"}, "DB_REPLICA_HOSTS", "not a DSN"},
		{"pooler", map[string]string{"DB_POOLER": "pgbouncer", "DB_REPLICA_HOSTS": "db2"}, "DB_REPLICA_HOSTS", "pooler"},
		{"port", map[string]string{"DB_REPLICA_HOSTS": "db2:99999"}, "DB_REPLICA_HOSTS", "port out of range"},
		{"empty entry", map[string]string{"DB_REPLICA_HOSTS": "db2,,db3"}, "DB_REPLICA_HOSTS", "empty host"},
		{"bad host", map[string]string{"DB_REPLICA_HOSTS": "db 2"}, "DB_REPLICA_HOSTS", "not a host name"},
		{"twice", map[string]string{"DB_REPLICA_HOSTS": "db2,db2:5432"}, "DB_REPLICA_HOSTS", "listed twice"},
		{"the primary", map[string]string{"DB_HOST": "db1", "DB_REPLICA_HOSTS": "db1"}, "DB_REPLICA_HOSTS", "the primary itself"},
		{"socket", map[string]string{"DB_REPLICA_HOSTS": "/run/postgresql"}, "DB_REPLICA_HOSTS", "Unix socket"},
		{"lag", map[string]string{"DB_REPLICA_MAX_LAG": "soon"}, "DB_REPLICA_MAX_LAG", "not a duration"},
		{"negative lag", map[string]string{"DB_REPLICA_MAX_LAG": "-1s"}, "DB_REPLICA_MAX_LAG", "must not be negative"},
		{"interval", map[string]string{"DB_REPLICA_CHECK_INTERVAL": "-5ms"}, "DB_REPLICA_CHECK_INTERVAL", "must not be negative"},
		{"policy", map[string]string{"DB_REPLICA_POLICY": "random"}, "DB_REPLICA_POLICY", "unknown policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearDBEnv(t)
			t.Setenv("DB_PASSWORD", "topsecret")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := dbm.LoadConfig()
			var ce *dbm.ConfigError
			if !errors.Is(err, dbm.ErrConfig) || !errors.As(err, &ce) || ce.Var != tc.varName {
				t.Fatalf("LoadConfig: %v; want a *ConfigError for %s", err, tc.varName)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.varName) || !strings.Contains(msg, tc.reason) || strings.Contains(msg, "topsecret") {
				t.Errorf("LoadConfig: %q; want it to name %s and say %q, without the password", msg, tc.varName, tc.reason)
			}
		})
	}
	// New judges a Config literal the same way, before connecting.
	_, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverMySQL, Host: "db1", ReplicaHosts: []string{"db2"}})
	var ce *dbm.ConfigError
	if !errors.As(err, &ce) || ce.Field != "ReplicaHosts" || !errors.Is(err, dbm.ErrConfig) {
		t.Errorf("New with MySQL replicas: %v; want ErrConfig for ReplicaHosts", err)
	}
}

// TestReplicasDownAtNew: when no server answers, New fails with
// ErrConnection naming the primary, as it does for one server.
func TestReplicasDownAtNew(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := dbm.New(ctx, dbm.Config{Host: "127.0.0.1", Port: 1, User: "u", Password: "topsecret", SSLMode: "disable",
		ReplicaHosts: []string{"127.0.0.1:2"}})
	if !errors.Is(err, dbm.ErrConnection) || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("New with no server up: %v; want ErrConnection naming 127.0.0.1:1, without the password", err)
	}
}
