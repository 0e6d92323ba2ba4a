package dbm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// A DB_* variable LoadConfig does not read is an error naming it and the
// variable it most likely means, never its value.
func TestLoadConfigReportsUnknownVariables(t *testing.T) {
	for _, c := range []struct{ name, near string }{
		{"DB_USERNAME", "DB_USER"},
		{"DB_PASWORD", "DB_PASSWORD"},
		{"DB_PASS", "DB_PASSWORD"},
		{"DB_DATABASE", "DB_NAME"},
		{"DB_SSL_MODE", "DB_SSLMODE"},
		{"DB_MAX_OPEN_CONN", "DB_MAX_OPEN_CONNS"},
		{"DB_LEAK_TRESHOLD", "DB_LEAK_THRESHOLD"},
		{"DB_HOTS", "DB_HOST"},
		{"DB_PORT_TCP", "DB_PORT"},
		{"DB_COLOUR", ""}, // nothing close: no suggestion
	} {
		t.Run(c.name, func(t *testing.T) {
			clearDBEnv(t)
			t.Setenv("DB_DRIVER", "sqlite")
			t.Setenv("DB_NAME", ":memory:")
			const value = "s3cret-value"
			t.Setenv(c.name, value)
			_, err := dbm.LoadConfig()
			var ce *dbm.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, dbm.ErrConfig) || ce.Var != c.name {
				t.Fatalf("LoadConfig with %s set: %v, want a *ConfigError naming it", c.name, err)
			}
			msg := err.Error()
			if strings.Contains(msg, value) || ce.Value != "" {
				t.Errorf("the error shows the variable's value: %q", msg)
			}
			if c.near != "" && !strings.Contains(msg, "did you mean "+c.near+"?") {
				t.Errorf("error %q does not suggest %s", msg, c.near)
			}
			if c.near == "" && strings.Contains(msg, "did you mean") {
				t.Errorf("error %q suggests a variable for a name close to none", msg)
			}
		})
	}
}

// The variables Kubernetes and Docker links put in the environment for a
// service called "db" are not reported.
func TestLoadConfigIgnoresPlatformServiceVariables(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_DRIVER", "sqlite")
	t.Setenv("DB_NAME", ":memory:")
	for _, name := range []string{"DB_SERVICE_HOST", "DB_SERVICE_PORT", "DB_SERVICE_PORT_POSTGRES", "DB_PORT_5432_TCP",
		"DB_PORT_5432_TCP_ADDR", "DB_PORT_5432_TCP_PROTO", "DB_ENV_POSTGRES_DB"} {
		t.Setenv(name, "10.0.0.11")
	}
	if _, err := dbm.LoadConfig(); err != nil {
		t.Errorf("LoadConfig with Kubernetes' service variables for \"db\": %v", err)
	}
}

func TestLoadConfigReportsUnknownVariablesInFiles(t *testing.T) {
	clearDBEnv(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "app.env")
	// Other prefixes are the application's business, not LoadConfig's.
	if err := os.WriteFile(f, []byte("APP_PORT=8080\nDB_DRIVER=sqlite\nDB_NAME=:memory:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dbm.LoadConfig(f); err != nil {
		t.Fatalf("a file with only known DB_* variables: %v", err)
	}
	if err := os.WriteFile(f, []byte("DB_DRIVER=sqlite\nDB_NAME=:memory:\nDB_USERNAME=app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := dbm.LoadConfig(f)
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), "DB_USERNAME: unknown variable: did you mean DB_USER?") {
		t.Errorf("DB_USERNAME in a file: %v", err)
	}
	// An empty value counts as unset, as for every variable.
	t.Setenv("DB_USERNAME", "")
	if err := os.WriteFile(f, []byte("DB_DRIVER=sqlite\nDB_NAME=:memory:\nDB_USERNAME=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dbm.LoadConfig(f); err != nil {
		t.Errorf("an empty unknown variable: %v", err)
	}
}

// SQLite has no network connection: DB_SSLMODE=disable, shared with the
// other drivers' settings, is ignored; any other mode is an error.
func TestSQLiteIgnoresSSLModeDisable(t *testing.T) {
	clearDBEnv(t)
	t.Setenv("DB_DRIVER", "sqlite")
	t.Setenv("DB_NAME", ":memory:")
	t.Setenv("DB_SSLMODE", "disable")
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatalf("sqlite with DB_SSLMODE=disable: %v", err)
	}
	m, err := dbm.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if n, err := dbm.One[int64](context.Background(), m, "SELECT 1"); err != nil || n != 1 {
		t.Errorf("SELECT 1 = %d, %v", n, err)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	t.Setenv("DB_SSLMODE", "require")
	_, err = dbm.LoadConfig()
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), `only "disable"`) {
		t.Errorf("sqlite with DB_SSLMODE=require: %v, want ErrConfig saying only disable is accepted", err)
	}
}
