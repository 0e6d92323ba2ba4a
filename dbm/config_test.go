package dbm_test

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

const envDir = "../testdata/env/"

// clearDBEnv makes the test independent of the developer's DB_* variables.
func clearDBEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"DB_DRIVER", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME",
		"DB_SSLMODE", "DB_SSLROOTCERT", "DB_SSLCERT", "DB_SSLKEY", "DB_PARAMS", "DB_MAX_OPEN_CONNS", "DB_MAX_IDLE_CONNS", "DB_CONN_MAX_LIFETIME",
		"DB_CONN_MAX_IDLE_TIME", "DB_CONNECT_TIMEOUT", "DB_ACQUIRE_TIMEOUT", "DB_RETRY_MAX_ATTEMPTS",
		"DB_RETRY_INITIAL_BACKOFF", "DB_RETRY_MAX_BACKOFF", "DB_LEAK_THRESHOLD", "DB_LEAK_STACKS",
		"DB_SLOW_QUERY_THRESHOLD"} {
		t.Setenv(v, "")
	}
	for _, kv := range os.Environ() { // and any other DB_*, which LoadConfig reports
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DB_") {
			t.Setenv(k, "")
		}
	}
}

func TestLoadConfigSeedVariables(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_HOST", "db.example.com")
	t.Setenv("DB_PORT", "6543")
	t.Setenv("DB_USER", "app")
	t.Setenv("DB_PASSWORD", "hunter2")
	t.Setenv("DB_NAME", "appdb")
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := dbm.Config{Host: "db.example.com", Port: 6543, User: "app", Password: "hunter2", Database: "appdb"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) || cfg.Password != want.Password {
		t.Errorf("LoadConfig = %v, want %v", cfg, want)
	}
}

func TestLoadConfigAllVariables(t *testing.T) {
	clearDBEnv(t)
	for k, v := range map[string]string{
		"DB_DRIVER": "pgx", "DB_SSLMODE": "verify-full", "DB_PARAMS": "application_name=api,search_path=app",
		"DB_MAX_OPEN_CONNS": "25", "DB_MAX_IDLE_CONNS": "5", "DB_CONN_MAX_LIFETIME": "1h",
		"DB_CONN_MAX_IDLE_TIME": "90s", "DB_CONNECT_TIMEOUT": "3s", "DB_ACQUIRE_TIMEOUT": "2s",
		"DB_RETRY_MAX_ATTEMPTS": "5", "DB_RETRY_INITIAL_BACKOFF": "10ms", "DB_RETRY_MAX_BACKOFF": "2s",
		"DB_LEAK_THRESHOLD": "30s", "DB_LEAK_STACKS": "true", "DB_SLOW_QUERY_THRESHOLD": "250ms",
		"DB_DSN": "postgres://u@h/db",
	} {
		t.Setenv(k, v)
	}
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := dbm.Config{
		Driver: "pgx", DSN: "postgres://u@h/db", SSLMode: "verify-full",
		Params:       map[string]string{"application_name": "api", "search_path": "app"},
		MaxOpenConns: 25, MaxIdleConns: 5, ConnMaxLifetime: time.Hour, ConnMaxIdleTime: 90 * time.Second,
		ConnectTimeout: 3 * time.Second, AcquireTimeout: 2 * time.Second, RetryMaxAttempts: 5,
		RetryInitialBackoff: 10 * time.Millisecond, RetryMaxBackoff: 2 * time.Second,
		LeakThreshold: 30 * time.Second, LeakStacks: true, SlowQueryThreshold: 250 * time.Millisecond,
	}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("LoadConfig =\n %v\nwant\n %v", cfg, want)
	}
}

func TestLoadConfigFilesAndPrecedence(t *testing.T) {
	clearDBEnv(t)
	cfg, err := dbm.LoadConfig(envDir + "base.env")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "localhost" || cfg.Port != 5432 || cfg.User != "user" || cfg.Password != "pass" || cfg.Database != "test_db" {
		t.Errorf("base.env: got %v (password %q)", cfg, cfg.Password)
	}

	// A later file wins over an earlier one.
	cfg, err = dbm.LoadConfig(envDir+"base.env", envDir+"override.env")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "db.internal" || cfg.Password != "p@ss:w/rd?#%&= ok" || cfg.User != "user" ||
		cfg.MaxOpenConns != 20 || cfg.ConnMaxLifetime != time.Hour || !cfg.LeakStacks ||
		cfg.Params["application_name"] != "api" || cfg.Params["connect_timeout"] != "5" {
		t.Errorf("base+override: got %v", cfg)
	}

	// The process environment wins over every file.
	t.Setenv("DB_HOST", "from-env")
	t.Setenv("DB_MAX_OPEN_CONNS", "7")
	cfg, err = dbm.LoadConfig(envDir+"base.env", envDir+"override.env")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "from-env" || cfg.MaxOpenConns != 7 || cfg.Database != "test_db" {
		t.Errorf("environment should win: got %v", cfg)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	clearDBEnv(t)
	_, err := dbm.LoadConfig(envDir + "does-not-exist.env")
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), "does-not-exist.env") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: err = %v, want ErrConfig naming the file", err)
	}
	_, err = dbm.LoadConfig(envDir + "malformed.env")
	if !errors.Is(err, dbm.ErrConfig) {
		t.Fatalf("malformed file: err = %v, want ErrConfig", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("malformed file error leaks the file's content: %v", err)
	}
}

// badValues are environment values LoadConfig must reject, each with the
// variable and a fragment of the reason the error must contain.
var badValues = []struct {
	name, value, reason string
}{
	{"DB_PORT", "abc", "not a whole number"},
	{"DB_PORT", "70000", "out of range"},
	{"DB_PORT", "-1", "out of range"},
	{"DB_DRIVER", "oracle", "unknown driver"},
	{"DB_MAX_OPEN_CONNS", "-3", "must not be negative"},
	{"DB_MAX_OPEN_CONNS", "ten", "not a whole number"},
	{"DB_MAX_IDLE_CONNS", "-1", "must not be negative"},
	{"DB_MAX_IDLE_CONNS", "50", "larger than MaxOpenConns"},
	{"DB_CONN_MAX_LIFETIME", "30", "not a duration"},
	{"DB_CONN_MAX_LIFETIME", "-5m", "must not be negative"},
	{"DB_CONN_MAX_IDLE_TIME", "soon", "not a duration"},
	{"DB_CONNECT_TIMEOUT", "1 hour", "not a duration"},
	{"DB_ACQUIRE_TIMEOUT", "x", "not a duration"},
	{"DB_RETRY_MAX_ATTEMPTS", "-1", "must not be negative"},
	{"DB_RETRY_INITIAL_BACKOFF", "5s", "larger than RetryMaxBackoff"},
	{"DB_RETRY_MAX_BACKOFF", "forever", "not a duration"},
	{"DB_LEAK_THRESHOLD", "-1s", "must not be negative"},
	{"DB_LEAK_STACKS", "maybe", "not a boolean"},
	{"DB_SLOW_QUERY_THRESHOLD", "fast", "not a duration"},
	{"DB_SSLMODE", "sometimes", "unknown mode"},
	{"DB_PARAMS", "novalue", "key=value"},
	{"DB_HOST", "db host/x", "not a host name"},
	{"DB_HOST", "[::1]", "without brackets"},
	{"DB_HOST", "db:5433", "put the port in Port"},
	{"DB_DSN", "postgres://u:pa ss@h/d", "not a valid URL"},
}

func TestHostForms(t *testing.T) {
	for _, tc := range []struct {
		driver, host string
		ok           bool
	}{
		{"postgres", "::1", true},
		{"postgres", "db.example.com", true},
		{"postgres", "/var/run/postgresql", true},
		{"mysql", "/tmp/mysql.sock", false},
		{"mysql", "127.0.0.1", true},
	} {
		clearDBEnv(t)
		t.Setenv("DB_DRIVER", tc.driver)
		t.Setenv("DB_HOST", tc.host)
		_, err := dbm.LoadConfig()
		if (err == nil) != tc.ok {
			t.Errorf("%s host %q: err = %v, want ok=%v", tc.driver, tc.host, err, tc.ok)
		}
	}
}

func TestLoadConfigBadValues(t *testing.T) {
	for _, tc := range badValues {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			clearDBEnv(t)
			t.Setenv("DB_PASSWORD", "topsecret")
			t.Setenv(tc.name, tc.value)
			_, err := dbm.LoadConfig()
			if err == nil {
				t.Fatal("LoadConfig accepted the value")
			}
			var ce *dbm.ConfigError
			if !errors.Is(err, dbm.ErrConfig) || !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *ConfigError matching ErrConfig", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.name) || !strings.Contains(msg, tc.reason) {
				t.Errorf("err = %q, want it to name %s and say %q", msg, tc.name, tc.reason)
			}
			if strings.Contains(msg, "topsecret") || strings.Contains(msg, "pa ss") {
				t.Errorf("err reveals the password: %q", msg)
			}
		})
	}
}

func TestLoadConfigSQLiteNeedsPath(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_DRIVER", "sqlite")
	_, err := dbm.LoadConfig()
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), "DB_NAME") {
		t.Errorf("err = %v, want ErrConfig naming DB_NAME", err)
	}
	t.Setenv("DB_NAME", "app.db")
	if _, err := dbm.LoadConfig(); err != nil {
		t.Errorf("sqlite with a path: %v", err)
	}
}

// DB_SSLMODE also sets MySQL's TLS; with DB_PARAMS=tls=... as well, which
// one applies would be a guess.
func TestSSLModeForMySQL(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_DRIVER", "mysql")
	t.Setenv("DB_SSLMODE", "require")
	if cfg, err := dbm.LoadConfig(); err != nil || cfg.SSLMode != "require" {
		t.Errorf("LoadConfig = %+v, %v; want SSLMode require", cfg, err)
	}
	t.Setenv("DB_PARAMS", "tls=true")
	_, err := dbm.LoadConfig()
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), `Params["tls"]`) {
		t.Errorf("err = %v, want ErrConfig pointing to Params[\"tls\"]", err)
	}
}

func TestLoadConfigEmptyValuesAndParamSpaces(t *testing.T) {
	clearDBEnv(t)
	cfg, err := dbm.LoadConfig(envDir+"base.env", envDir+"empty.env")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "localhost" {
		t.Errorf("Host = %q: an empty value in a later file cleared it", cfg.Host)
	}
	if len(cfg.Params) != 2 || cfg.Params["application_name"] != "api" || cfg.Params["connect_timeout"] != "5" {
		t.Errorf("Params = %q, want spaces around keys and values trimmed", cfg.Params)
	}
}

func TestEnvFileDollarSigns(t *testing.T) {
	clearDBEnv(t)
	cfg, err := dbm.LoadConfig(envDir + "dollar.env")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "Pa$W0RD!" {
		t.Errorf("single-quoted password = %q, want it kept as written", cfg.Password)
	}
	if cfg.User != "Pa" { // documented: unquoted $W0RD is expanded (to nothing here)
		t.Errorf("unquoted value = %q; docs/configuration.md describes $ expansion", cfg.User)
	}
}

// TestEveryVariableIsDocumented keeps the variable lists of README.md and
// docs/configuration.md complete: each Config field's variable is in both.
func TestEveryVariableIsDocumented(t *testing.T) {
	for _, doc := range []string{"../README.md", "../docs/configuration.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for f := range reflect.TypeFor[dbm.Config]().Fields() {
			if v := f.Tag.Get("env"); v != "" && !strings.Contains(string(b), "`"+v+"`") {
				t.Errorf("%s does not list %s (Config.%s)", doc, v, f.Name)
			}
		}
	}
}
