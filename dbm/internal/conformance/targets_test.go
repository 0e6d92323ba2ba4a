package conformance_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var postgresDialect = conformance.Dialect{
	Placeholder: conformance.Dollar,
	BigInt:      "BIGINT", Double: "DOUBLE PRECISION", Bool: "BOOLEAN", Text: "TEXT", Bytes: "BYTEA",
	TimestampTZ: "TIMESTAMPTZ", Timestamp: "TIMESTAMP", Decimal: "NUMERIC(24,4)",
	Epoch:               func(col string) string { return "CAST(floor(extract(epoch FROM " + col + ")) AS BIGINT)" },
	Sleep:               "SELECT pg_sleep(5)",
	NaiveKeepsWallClock: true,
}

func postgresTarget(driver string) conformance.Target {
	return conformance.Target{
		Name: driver,
		Config: func(t testing.TB) dbm.Config {
			host, port := conformance.PostgresAddr(t)
			return dbm.Config{Driver: driver, Host: host, Port: port, User: "postgres", Database: "test", SSLMode: "disable",
				Params: map[string]string{"application_name": "dbm_c5_conformance"}}
		},
		Env: func(t testing.TB) map[string]string {
			host, port := conformance.PostgresAddr(t)
			return map[string]string{"DB_DRIVER": driver, "DB_HOST": host, "DB_PORT": strconv.Itoa(port), "DB_USER": "postgres",
				"DB_NAME": "test", "DB_SSLMODE": "disable", "DB_PARAMS": "application_name=dbm_c5_loadconfig"}
		},
		Dialect: postgresDialect,
	}
}

var mysqlTarget = conformance.Target{
	Name: "mysql",
	Config: func(t testing.TB) dbm.Config {
		host, port := conformance.MySQLAddr(t)
		return dbm.Config{Driver: dbm.DriverMySQL, Host: host, Port: port, User: "root", Database: "test"}
	},
	Env: func(t testing.TB) map[string]string {
		host, port := conformance.MySQLAddr(t)
		return map[string]string{"DB_DRIVER": "mysql", "DB_HOST": host, "DB_PORT": strconv.Itoa(port), "DB_USER": "root", "DB_NAME": "test"}
	},
	Dialect: conformance.Dialect{
		Placeholder: conformance.Question,
		BigInt:      "BIGINT", Double: "DOUBLE", Bool: "BOOLEAN", Text: "TEXT", Bytes: "BLOB",
		TimestampTZ: "TIMESTAMP(6)", Timestamp: "DATETIME(6)", Decimal: "DECIMAL(24,4)",
		TableOptions: " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		Epoch:        func(col string) string { return "CAST(FLOOR(UNIX_TIMESTAMP(" + col + ")) AS SIGNED)" },
		Sleep:        "SELECT SLEEP(5)",
	},
}

var sqliteDialect = conformance.Dialect{
	Placeholder: conformance.Question,
	BigInt:      "INTEGER", Double: "REAL", Bool: "BOOLEAN", Text: "TEXT", Bytes: "BLOB",
	TimestampTZ: "TIMESTAMP", Timestamp: "DATETIME", Decimal: "DECIMAL(24,4)",
	Epoch: func(col string) string { return "CAST(strftime('%s', " + col + ") AS INTEGER)" },
	// Counts to a billion: seconds of work that an interrupt stops.
	Sleep: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c",
}

var sqliteFileTarget = conformance.Target{
	Name: "sqlite-file",
	Config: func(t testing.TB) dbm.Config {
		return dbm.Config{Driver: dbm.DriverSQLite, Database: filepath.Join(t.TempDir(), "c5.db")}
	},
	Env: func(t testing.TB) map[string]string {
		return map[string]string{"DB_DRIVER": "sqlite", "DB_NAME": filepath.Join(t.TempDir(), "c5-env.db")}
	},
	Dialect: sqliteDialect,
}

var sqliteMemoryTarget = conformance.Target{
	Name:   "sqlite-memory",
	Config: func(testing.TB) dbm.Config { return dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"} },
	Env: func(testing.TB) map[string]string {
		return map[string]string{"DB_DRIVER": "sqlite", "DB_NAME": ":memory:"}
	},
	Dialect: sqliteDialect,
}

// TestConformance runs the one suite against every supported driver.
func TestConformance(t *testing.T) {
	for _, tg := range []conformance.Target{
		postgresTarget(dbm.DriverPostgres),
		postgresTarget(dbm.DriverPgx),
		mysqlTarget,
		sqliteFileTarget,
		sqliteMemoryTarget,
	} {
		t.Run(tg.Name, func(t *testing.T) { conformance.Run(t, tg) })
	}
}

// The MySQL session reads times in the driver's zone (UTC), so NOW() and
// TIMESTAMP columns agree with the time.Time values the program sends,
// whatever the server's own time zone.
func TestMySQLSessionIsUTC(t *testing.T) {
	cfg := mysqlTarget.Config(t)
	cfg.MaxOpenConns = 2
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	if tz, err := dbm.One[string](ctx, m, "SELECT @@session.time_zone"); err != nil || tz != "+00:00" {
		t.Errorf("@@session.time_zone = %q, %v; want +00:00", tz, err)
	}
	if d, err := dbm.One[int64](ctx, m, "SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())"); err != nil || d != 0 {
		t.Errorf("NOW() - UTC_TIMESTAMP() = %d minutes, %v; want 0", d, err)
	}
}
