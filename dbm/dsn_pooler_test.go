package dbm

import (
	"errors"
	"testing"
)

// Config.Pooler adds the driver's pooler-safe setting to the DSN it builds
// and to a DSN the user gave, unless that already sets it.
func TestPoolerDriverParam(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"lib/pq parts", Config{Driver: DriverPostgres, Host: "h", User: "u", Database: "d", Pooler: PoolerPgBouncer},
			"postgres://u@h:5432/d?binary_parameters=yes&sslmode=prefer"},
		{"pgx parts", Config{Driver: DriverPgx, Host: "h", User: "u", Database: "d", Pooler: PoolerPgBouncer},
			"postgres://u@h:5432/d?default_query_exec_mode=cache_describe&sslmode=prefer"},
		{"Params win", Config{Driver: DriverPgx, Host: "h", Database: "d", Pooler: PoolerPgBouncer,
			Params: map[string]string{"default_query_exec_mode": "simple_protocol"}},
			"postgres://h:5432/d?default_query_exec_mode=simple_protocol&sslmode=prefer"},
		{"no pooler", Config{Driver: DriverPostgres, Host: "h", Database: "d"}, "postgres://h:5432/d?sslmode=prefer"},
		{"URL DSN", Config{Driver: DriverPostgres, DSN: "postgres://u:p%40ss@h/d", Pooler: PoolerPgBouncer},
			"postgres://u:p%40ss@h/d?binary_parameters=yes"},
		{"URL DSN with a query", Config{Driver: DriverPgx, DSN: "postgres://h/d?sslmode=disable", Pooler: PoolerPgBouncer},
			"postgres://h/d?sslmode=disable&default_query_exec_mode=cache_describe"},
		{"URL DSN that sets it", Config{Driver: DriverPgx, DSN: "postgres://h/d?default_query_exec_mode=exec", Pooler: PoolerPgBouncer},
			"postgres://h/d?default_query_exec_mode=exec"},
		{"key/value DSN", Config{Driver: DriverPostgres, DSN: "host=h password='a b' ", Pooler: PoolerPgBouncer},
			"host=h password='a b' binary_parameters=yes"},
		{"key/value DSN that sets it", Config{Driver: DriverPostgres, DSN: "host=h binary_parameters=no", Pooler: PoolerPgBouncer},
			"host=h binary_parameters=no"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg.withDefaults()
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if got := cfg.dsn(); got != c.want {
				t.Errorf("dsn() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPoolerValidation(t *testing.T) {
	for _, c := range []Config{
		{Driver: DriverPostgres, Host: "h", Pooler: "pgpool"},
		{Driver: DriverMySQL, Host: "h", Pooler: PoolerPgBouncer},
		{Driver: DriverSQLite, Database: ":memory:", Pooler: PoolerPgBouncer},
	} {
		err := c.withDefaults().validate()
		var ce *ConfigError
		if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || ce.Field != "Pooler" || ce.Var != "DB_POOLER" {
			t.Errorf("validate(%+v) = %v; want a ConfigError on Pooler (DB_POOLER)", c, err)
		}
	}
	t.Setenv("DB_POOLER", "pgbouncer")
	t.Setenv("DB_DRIVER", "pgx")
	cfg, err := LoadConfig()
	if err != nil || cfg.Pooler != PoolerPgBouncer {
		t.Errorf("LoadConfig with DB_POOLER=pgbouncer: Pooler = %q, %v", cfg.Pooler, err)
	}
}
