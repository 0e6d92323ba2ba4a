package nodriver

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A program that imports only dbm has lib/pq, and nothing else.
func TestOnlyLibPQIsRegistered(t *testing.T) {
	drivers := sql.Drivers()
	if !slices.Contains(drivers, dbm.DriverPostgres) {
		t.Errorf("sql.Drivers() = %v: importing dbm should register lib/pq as %q", drivers, dbm.DriverPostgres)
	}
	for _, d := range []string{dbm.DriverPgx, dbm.DriverMySQL, dbm.DriverSQLite} {
		if slices.Contains(drivers, d) {
			t.Fatalf("sql.Drivers() = %v: %q is registered, so this package cannot test its absence", drivers, d)
		}
	}
}

// New names the import to add when the chosen driver is not registered,
// before it opens anything.
func TestNewNamesTheMissingImport(t *testing.T) {
	for _, c := range []struct {
		cfg  dbm.Config
		hint string
	}{
		{dbm.Config{Driver: dbm.DriverPgx, Host: "127.0.0.1", User: "u", Password: "Zq9-secret", Database: "d"}, `import _ "github.com/jackc/pgx/v5/stdlib"`},
		{dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "u", Password: "Zq9-secret", Database: "d"}, `import _ "github.com/go-sql-driver/mysql"`},
		{dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, `import _ "modernc.org/sqlite"`},
		{dbm.Config{Driver: dbm.DriverMySQL, DSN: "u:Zq9-secret@tcp(127.0.0.1:3306)/d"}, `import _ "github.com/go-sql-driver/mysql"`},
	} {
		t.Run(c.cfg.Driver, func(t *testing.T) {
			m, err := dbm.New(context.Background(), c.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded without the driver")
			}
			if !errors.Is(err, dbm.ErrConfig) || dbm.Classify(err) != dbm.ClassConfig {
				t.Errorf("err = %v, want a match for ErrConfig", err)
			}
			var ce *dbm.ConfigError
			if !errors.As(err, &ce) || ce.Field != "Driver" || ce.Var != "DB_DRIVER" {
				t.Errorf("err = %#v, want a *dbm.ConfigError for Driver (DB_DRIVER)", err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.hint) || !strings.Contains(msg, `"`+c.cfg.Driver+`"`) {
				t.Errorf("err = %q, want it to name the driver and say %s", msg, c.hint)
			}
			if strings.Contains(err.Error(), "Zq9-secret") {
				t.Errorf("err shows the password: %v", err)
			}
		})
	}
}
