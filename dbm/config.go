package dbm

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
)

// Drivers the manager knows how to configure. A driver other than the
// default must be imported by the program (see [New]).
const (
	DriverPostgres = "postgres" // github.com/lib/pq, the default; imported by dbm
	DriverPgx      = "pgx"      // github.com/jackc/pgx/v5/stdlib
	DriverMySQL    = "mysql"    // github.com/go-sql-driver/mysql (MySQL and MariaDB)
	DriverSQLite   = "sqlite"   // modernc.org/sqlite
)

// PoolerPgBouncer is the [Config].Pooler value for PgBouncer in transaction
// pooling mode.
const PoolerPgBouncer = "pgbouncer"

// Defaults applied by [New] to zero-valued fields of [Config].
const (
	// DefaultMaxOpenConns bounds the pool. database/sql's default is
	// unlimited, which lets a burst of requests exhaust the server's
	// max_connections and fail everyone.
	DefaultMaxOpenConns = 10
	// DefaultConnMaxLifetime recycles connections so that server-side memory
	// growth, fail-overs and load-balancer changes are picked up, and so that
	// connections are closed before typical 1-hour firewall or proxy limits.
	DefaultConnMaxLifetime = 30 * time.Minute
	// DefaultConnMaxIdleTime closes connections a quiet application no longer
	// needs, returning them to the server.
	DefaultConnMaxIdleTime = 10 * time.Minute
	// DefaultConnectTimeout is how long [New] keeps trying to reach the
	// server when the caller's context has no deadline.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultSSLMode is libpq's own default: TLS when the server offers it,
	// without checking the server's certificate. It applies when none of
	// SSLRootCert, SSLCert and SSLKey is set; otherwise the default is
	// "verify-full". Production should use verify-full: see
	// docs/configuration.md#tls.
	DefaultSSLMode = "prefer"
	// DefaultRetryMaxAttempts, DefaultRetryInitialBackoff and
	// DefaultRetryMaxBackoff describe the retry policy: a few quick attempts,
	// so a transient failure is hidden but an outage is reported within about
	// a second.
	DefaultRetryMaxAttempts    = 3
	DefaultRetryInitialBackoff = 50 * time.Millisecond
	DefaultRetryMaxBackoff     = 1 * time.Second
	// DefaultAcquireTimeout bounds the wait for a free pool connection, so
	// that no call waits forever by default: HikariCP's connectionTimeout.
	// A dropped Rows or Tx is given back within a fraction of a second of a
	// caller starting to wait (see docs/leaks.md), so what runs it out is a
	// pool held by work that is alive: the caller then gets an
	// [ErrPoolTimeout] naming what holds the connections, instead of
	// hanging. See docs/configuration.md.
	DefaultAcquireTimeout = 30 * time.Second
)

// NoAcquireTimeout, as Config.AcquireTimeout, turns the bound off: a caller
// waits for a pool connection as long as its context allows. An explicit
// DB_ACQUIRE_TIMEOUT=0 means the same. (A zero AcquireTimeout in a Config
// literal is "unset", and takes [DefaultAcquireTimeout].)
const NoAcquireTimeout time.Duration = -1

// Config describes how to reach the database and how to run the pool. The
// zero value plus the fields that locate the database (Host, User, Database,
// ... or a DSN) works: every other zero field takes the default stated on it.
// [LoadConfig] fills a Config from DB_* environment variables and .env files.
//
// Config never prints its password: String, GoString, Format (every fmt
// verb), LogValue and MarshalJSON show "[redacted]" instead, and so does a
// DSN.
type Config struct {
	// Driver is the database/sql driver name: "postgres" (lib/pq, default),
	// "pgx", "mysql" or "sqlite".
	Driver string `env:"DB_DRIVER"`
	// DSN is a complete data source name or URL in the driver's own format.
	// When set it wins over Host, Port, User, Password, Database, SSLMode and
	// Params; SSLRootCert, SSLCert and SSLKey must then be empty (put
	// sslrootcert, sslcert and sslkey in the DSN).
	DSN string `env:"DB_DSN"`
	// Host is the server's host name or address. Default "localhost".
	Host string `env:"DB_HOST"`
	// Port is the server's TCP port. Default 5432 for PostgreSQL, 3306 for
	// MySQL.
	Port int `env:"DB_PORT"`
	// User is the role to connect as.
	User string `env:"DB_USER"`
	// Password is the user's password. It is never printed or logged.
	Password string `env:"DB_PASSWORD"`
	// Database is the database name; for SQLite, the file path or ":memory:".
	Database string `env:"DB_NAME"`
	// SSLMode is PostgreSQL's sslmode: disable, allow, prefer, require,
	// verify-ca or verify-full. Default "prefer", or "verify-full" when
	// SSLRootCert, SSLCert or SSLKey is set. With MySQL and MariaDB the same
	// modes set the driver's TLS (default: none, the driver's own); modes
	// that need certificate files also need dbm/dbmmysql imported. SQLite
	// accepts "disable" only (and ignores it).
	// SQLite accepts "disable" and ignores it. See
	// docs/configuration.md#tls for what each mode protects against.
	SSLMode string `env:"DB_SSLMODE"`
	// SSLRootCert is the path of a PEM file holding the certificate
	// authorities that sign the server's certificate (PostgreSQL's
	// sslrootcert), or "system" for the operating system's roots, which
	// needs SSLMode "verify-full". [LoadConfig] and [New] check that the
	// file exists and holds a PEM certificate. Default none: the driver
	// looks for ~/.postgresql/root.crt, then uses the system's roots.
	SSLRootCert string `env:"DB_SSLROOTCERT"`
	// SSLCert is the path of the client certificate (PEM) presented to the
	// server, for PostgreSQL's "cert" authentication or clientcert=verify-*
	// (sslcert). It needs SSLKey. Default none: the driver looks for
	// ~/.postgresql/postgresql.crt.
	SSLCert string `env:"DB_SSLCERT"`
	// SSLKey is the path of SSLCert's private key (PEM) (sslkey). The path
	// is not secret and is shown; the file's contents are never read by dbm.
	// With lib/pq (driver "postgres") group or others must not be able to
	// read the file (mode 0600, or 0640 when owned by root).
	SSLKey string `env:"DB_SSLKEY"`
	// Params are extra driver parameters added to the DSN, such as
	// application_name or connect_timeout. From the environment:
	// DB_PARAMS="application_name=api,connect_timeout=5".
	Params map[string]string `env:"DB_PARAMS" envSeparator:"," envKeyValSeparator:"="`
	// Pooler names a connection pooler between the manager and PostgreSQL
	// that gives server connections to other clients between transactions:
	// [PoolerPgBouncer] for PgBouncer in transaction pooling mode. Default
	// "" (none). With it, each driver sends a statement in one round trip
	// without named prepared statements (lib/pq: binary_parameters=yes; pgx:
	// default_query_exec_mode=cache_describe; unless Params or the DSN set
	// them), and
	// a statement that keeps state in the server session (SET without
	// LOCAL, LISTEN, session advisory locks, temporary tables without ON
	// COMMIT DROP) fails with [ErrInvalidArgument] before it is sent. See
	// docs/configuration.md#pgbouncer.
	Pooler string `env:"DB_POOLER"`

	// MaxOpenConns bounds the connections open at once. Default 10.
	MaxOpenConns int `env:"DB_MAX_OPEN_CONNS"`
	// MaxIdleConns bounds the idle connections kept for reuse. Default: equal
	// to MaxOpenConns (database/sql's default of 2 closes and reopens
	// connections under any real concurrency). It may not exceed
	// MaxOpenConns.
	MaxIdleConns int `env:"DB_MAX_IDLE_CONNS"`
	// ConnMaxLifetime closes connections older than this. Default 30m.
	ConnMaxLifetime time.Duration `env:"DB_CONN_MAX_LIFETIME"`
	// ConnMaxIdleTime closes connections idle longer than this. Default 10m.
	ConnMaxIdleTime time.Duration `env:"DB_CONN_MAX_IDLE_TIME"`
	// ConnMaxLifetimeJitter spreads the connections' lifetimes: each
	// connection gets a lifetime of its own, ConnMaxLifetime less a random
	// part of up to ConnMaxLifetimeJitter, so that a pool whose connections
	// were opened at once does not close and reopen them all at once.
	// Default: a tenth of ConnMaxLifetime; [NoLifetimeJitter] turns it off.
	// It must be smaller than ConnMaxLifetime. Pools made by [New] only.
	ConnMaxLifetimeJitter time.Duration `env:"DB_CONN_MAX_LIFETIME_JITTER"`
	// MinIdleConns is how many idle connections a background goroutine
	// keeps open (checked every second, while the pool has room), so that
	// a burst after a quiet spell does not wait for dials. Default 0
	// (none). It may not exceed MaxIdleConns (nor MaxOpenConns). Pools made
	// by [New] only; Close stops the goroutine.
	MinIdleConns int `env:"DB_MIN_IDLE_CONNS"`
	// ValidateIdleAfter makes the pool ping a connection that sat idle at
	// least this long before it hands it out; one that does not answer is
	// closed and another taken, so that a connection the network or the
	// server dropped meanwhile never reaches a statement. Default 0 (off:
	// no extra round trip). Pools made by [New] only.
	ValidateIdleAfter time.Duration `env:"DB_VALIDATE_IDLE_AFTER"`
	// ConnectTimeout bounds how long [New] retries its first connection when
	// the context passed to New has no deadline; how long making any one
	// connection (dial and login) may take, later too (past it, the call
	// fails with [ErrConnection]); and how long a read whose connections
	// keep breaking goes on running on new ones. Default 10s. See
	// docs/errors-and-retries.md.
	ConnectTimeout time.Duration `env:"DB_CONNECT_TIMEOUT"`
	// AcquireTimeout bounds the wait for a free connection of a full pool,
	// of a statement on the manager, of [Manager.BeginTx] (and each run of
	// [Manager.WithTx]) and of [Manager.Ping]; past it the call fails with
	// [ErrPoolTimeout], which is not retried; its message names the Rows
	// and Tx open at that moment, with their file:line. Making a new
	// connection when the pool has room is bounded by ConnectTimeout
	// instead. Default 30s ([DefaultAcquireTimeout]). [NoAcquireTimeout]
	// (or an explicit DB_ACQUIRE_TIMEOUT=0) waits as long as the caller's
	// context allows. See docs/errors-and-retries.md.
	AcquireTimeout time.Duration `env:"DB_ACQUIRE_TIMEOUT"`

	// RetryMaxAttempts is the most times a retryable operation is tried,
	// the first included. Default 3; 1 disables retries. What is retryable:
	// docs/errors-and-retries.md. [WithRetryMaxAttempts] overrides it.
	RetryMaxAttempts int `env:"DB_RETRY_MAX_ATTEMPTS"`
	// RetryInitialBackoff is the first pause between attempts. Default 50ms.
	// [WithRetryInitialBackoff] overrides it.
	RetryInitialBackoff time.Duration `env:"DB_RETRY_INITIAL_BACKOFF"`
	// RetryMaxBackoff caps the pause between attempts. Default 1s.
	// [WithRetryMaxBackoff] overrides it.
	RetryMaxBackoff time.Duration `env:"DB_RETRY_MAX_BACKOFF"`

	// LeakThreshold: a Rows or Tx open longer than this is logged once at
	// WARN through the logger given by [WithLogger]. Zero (default) turns
	// the report off; [Manager.Leaks] and reclaiming work regardless. See
	// [WithLeakThreshold].
	LeakThreshold time.Duration `env:"DB_LEAK_THRESHOLD"`
	// LeakStacks records the full stack of the code that opened a resource
	// ([Leak].Stack) instead of one file:line. See [WithLeakStacks].
	LeakStacks bool `env:"DB_LEAK_STACKS"`

	// SlowQueryThreshold: a statement that takes longer is logged at WARN
	// with its duration and shortened text (never its arguments) through the
	// logger given by [WithLogger]. Zero (default) turns it off.
	// [WithSlowQueryThreshold] overrides it.
	SlowQueryThreshold time.Duration `env:"DB_SLOW_QUERY_THRESHOLD"`

	// ReplicaHosts lists PostgreSQL streaming replicas of the server at
	// Host:Port, each "host" (Port is used) or "host:port" ("[::1]:5433"
	// for IPv6). With replicas, reads outside a transaction go to a healthy
	// replica within ReplicaMaxLag, writes and transactions to the primary,
	// and a replica promoted after the primary fails becomes the primary;
	// see docs/replicas.md. They log in with the same User, Password,
	// Database, SSLMode and Params. Driver postgres or pgx only, without a
	// DSN. From the environment: DB_REPLICA_HOSTS="db2,db3:5433".
	ReplicaHosts []string `env:"DB_REPLICA_HOSTS" envSeparator:","`
	// ReplicaMaxLag is how far behind the primary a replica may be and
	// still serve reads. Default 1s ([DefaultReplicaMaxLag]). The lag is
	// measured conservatively, so it includes up to one
	// ReplicaCheckInterval: keep the bound well above it.
	ReplicaMaxLag time.Duration `env:"DB_REPLICA_MAX_LAG"`
	// ReplicaPolicy chooses among the replicas that may serve a read:
	// [ReplicaRoundRobin] (default) or [ReplicaLeastInUse].
	ReplicaPolicy string `env:"DB_REPLICA_POLICY"`
	// ReplicaCheckInterval is how often each server's role and replay
	// position are checked. Default 200ms ([DefaultReplicaCheckInterval]).
	ReplicaCheckInterval time.Duration `env:"DB_REPLICA_CHECK_INTERVAL"`
}

// ConfigError reports a configuration value that is missing or invalid. It
// matches [ErrConfig] and never holds the password or a DSN.
type ConfigError struct {
	Field  string // the Config field, e.g. "Port"
	Var    string // the environment variable, e.g. "DB_PORT"; empty if none
	Value  string // the offending value, quoted; empty for secrets
	Reason string // what is wrong
	Err    error  // an underlying error, if any
}

// Error returns "dbm: config: <Field> (<Var>) = <Value>: <Reason>".
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("dbm: config: ")
	switch {
	case e.Field != "" && e.Var != "":
		b.WriteString(e.Field + " (" + e.Var + ")")
	case e.Var != "":
		b.WriteString(e.Var)
	default:
		b.WriteString(e.Field)
	}
	if e.Value != "" {
		b.WriteString(" = " + e.Value)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// Is reports whether target is [ErrConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Unwrap returns the underlying error, if any.
func (e *ConfigError) Unwrap() error { return e.Err }

// fieldVars maps each Config field to its environment variable, read once
// from the struct tags so the table cannot drift from the struct.
var fieldVars = func() map[string]string {
	t := reflect.TypeFor[Config]()
	m := make(map[string]string, t.NumField())
	for f := range t.Fields() {
		m[f.Name] = f.Tag.Get("env")
	}
	return m
}()

// secretFields are never echoed in errors.
var secretFields = map[string]bool{"Password": true, "DSN": true, "Params": true}

func configErr(field, reason string, value any) *ConfigError {
	e := &ConfigError{Field: field, Var: fieldVars[field], Reason: reason}
	if value != nil && !secretFields[field] {
		e.Value = fmt.Sprintf("%q", fmt.Sprint(value))
	}
	return e
}

// LoadConfig reads DB_* variables into a Config: first from the named .env
// files in order (a later file wins over an earlier one), then from the
// process environment, which wins over the files. A variable set to the
// empty string, in a file or the environment, counts as unset. A named file that does not
// exist is an error. The result is validated; fields left unset keep their
// zero value and take their defaults in [New].
//
// To read a .env file only when it exists (a container that gets its DB_*
// variables from the environment has none), name it only then:
//
//	var files []string
//	if _, err := os.Stat(".env"); err == nil {
//		files = append(files, ".env")
//	}
//	cfg, err := dbm.LoadConfig(files...)
//
// Every error matches [ErrConfig] and names the variable and what is wrong
// with its value; see docs/configuration.md for the variables. A DB_*
// variable that LoadConfig does not read (DB_USERNAME, DB_PASWORD) is an
// error too, naming the known variable it most likely means.
func LoadConfig(envFiles ...string) (Config, error) {
	return loadConfig(os.Environ(), envFiles)
}

// loadConfig is LoadConfig with the environment given as KEY=VALUE strings,
// so that FuzzLoadConfig can feed values a real environment cannot hold (NUL
// bytes) without changing the process's.
func loadConfig(environ, envFiles []string) (Config, error) {
	vars := map[string]string{}
	for _, name := range envFiles {
		fileVars, err := godotenv.Read(name)
		if err != nil {
			reason := "cannot parse (details omitted: the file may hold secrets)"
			if errors.Is(err, os.ErrNotExist) {
				reason = "file does not exist"
			} else if errors.Is(err, os.ErrPermission) {
				reason = "permission denied"
			}
			return Config{}, &ConfigError{Field: "envFiles", Value: strconv.Quote(name), Reason: reason}
		}
		for k, v := range fileVars {
			if v != "" {
				vars[k] = v
			}
		}
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" && strings.HasPrefix(k, "DB_") {
			vars[k] = v
		}
	}
	if err := checkVarNames(vars); err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, envError(err, vars)
	}
	if _, set := vars[fieldVars["AcquireTimeout"]]; set && cfg.AcquireTimeout == 0 {
		cfg.AcquireTimeout = NoAcquireTimeout // an explicit 0: no bound
	}
	if len(cfg.Params) > 0 { // "a=1, b=2" means a and b
		params := make(map[string]string, len(cfg.Params))
		for k, v := range cfg.Params {
			params[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		cfg.Params = params
	}
	if err := cfg.withDefaults().validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envError turns the env package's first error into a ConfigError that names
// the variable and, unless it is secret, its value.
func envError(err error, vars map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return &ConfigError{Field: "environment", Reason: "cannot read DB_* variables", Err: err}
	}
	reason := "invalid value"
	switch pe.Type.Kind() {
	case reflect.Int:
		reason = "not a whole number"
	case reflect.Bool:
		reason = "not a boolean (want true or false)"
	case reflect.Int64:
		if pe.Type == reflect.TypeFor[time.Duration]() {
			reason = `not a duration (want a number with a unit, e.g. "500ms", "30s", "5m")`
		}
	case reflect.Map:
		reason = `not a list of key=value pairs separated by commas`
	}
	return configErr(pe.Name, reason, vars[fieldVars[pe.Name]])
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverPostgres
	}
	if c.DSN == "" && c.Driver != DriverSQLite {
		if c.Host == "" {
			c.Host = "localhost"
		}
		if c.Port == 0 {
			c.Port = defaultPort(c.Driver)
		}
	}
	if c.SSLMode == "" && c.DSN == "" && c.Driver == DriverMySQL && c.hasTLSFiles() {
		c.SSLMode = sslModeWithFiles // as for PostgreSQL below
	}
	if c.SSLMode == "" && c.DSN == "" && (c.Driver == DriverPostgres || c.Driver == DriverPgx) {
		c.SSLMode = DefaultSSLMode
		if c.hasTLSFiles() {
			// A CA or a client certificate only makes sense with TLS,
			// and a CA only with verification: never fall back to
			// plain text, and check who the server is.
			c.SSLMode = sslModeWithFiles
		}
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = c.MaxOpenConns
	}
	setDefault(&c.ConnMaxLifetime, DefaultConnMaxLifetime)
	setDefault(&c.ConnMaxIdleTime, DefaultConnMaxIdleTime)
	if c.ConnMaxLifetimeJitter == 0 {
		c.ConnMaxLifetimeJitter = c.ConnMaxLifetime / 10
	}
	setDefault(&c.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&c.RetryInitialBackoff, DefaultRetryInitialBackoff)
	setDefault(&c.RetryMaxBackoff, DefaultRetryMaxBackoff)
	if c.RetryMaxAttempts == 0 {
		c.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	setDefault(&c.AcquireTimeout, DefaultAcquireTimeout)
	return c
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func defaultPort(driver string) int {
	if driver == DriverMySQL {
		return 3306
	}
	return 5432
}

var knownDrivers = []string{DriverPostgres, DriverPgx, DriverMySQL, DriverSQLite}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// validate checks a Config that has its defaults applied. It is the one
// place where configuration values are judged.
func (c Config) validate() error {
	if !slices.Contains(knownDrivers, c.Driver) {
		return configErr("Driver", "unknown driver (want one of "+strings.Join(knownDrivers, ", ")+")", c.Driver)
	}
	if err := c.checkText(); err != nil {
		return err
	}
	if c.DSN != "" && (c.Driver == DriverPostgres || c.Driver == DriverPgx) {
		if _, _, isURL := redact.CutScheme(c.DSN); isURL {
			if _, err := url.Parse(c.DSN); err != nil {
				return configErr("DSN", "not a valid URL (percent-encode special characters in the user name and password, as url.UserPassword does)", nil)
			}
		}
	}
	if c.DSN == "" {
		switch c.Driver {
		case DriverSQLite:
			if c.Database == "" {
				return configErr("Database", `sqlite needs a database file path or ":memory:"`, nil)
			}
		default:
			if c.Port < 1 || c.Port > 65535 {
				return configErr("Port", "out of range (want 1-65535)", c.Port)
			}
			if err := checkHost(c.Driver, c.Host); err != "" {
				return configErr("Host", err, c.Host)
			}
		}
		if c.SSLMode != "" && !(c.Driver == DriverSQLite && c.SSLMode == "disable") {
			// SQLite has no connection to secure: "disable" is true of it,
			// so a DB_SSLMODE=disable shared with other drivers is ignored.
			if c.Driver == DriverSQLite {
				return configErr("SSLMode", `sqlite has no network connection: only "disable" is accepted (and ignored)`, c.SSLMode)
			}
			if _, set := c.Params["tls"]; set && c.Driver == DriverMySQL {
				return configErr("SSLMode", `also set as Params["tls"]; set one of them`, c.SSLMode)
			}
			if !slices.Contains(sslModes, c.SSLMode) {
				return configErr("SSLMode", "unknown mode (want one of "+strings.Join(sslModes, ", ")+")", c.SSLMode)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(c.Params)) { // the same error every time
			if k == "" {
				return configErr("Params", "empty parameter name", nil)
			}
			if strings.ContainsFunc(k, redact.NotParamNameRune) {
				return configErr("Params", fmt.Sprintf("parameter name %q: names are letters, digits, '_', '.' and '-'", k), nil)
			}
		}
	}
	if c.Pooler != "" {
		if c.Pooler != PoolerPgBouncer {
			return configErr("Pooler", `unknown pooler (want "" or "`+PoolerPgBouncer+`")`, c.Pooler)
		}
		if c.Driver != DriverPostgres && c.Driver != DriverPgx {
			return configErr("Pooler", "PgBouncer pools PostgreSQL connections: use driver postgres or pgx", c.Pooler)
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.validateReplicas(); err != nil {
		return err
	}
	if c.MaxOpenConns < 0 {
		return configErr("MaxOpenConns", "must not be negative", c.MaxOpenConns)
	}
	if c.MaxIdleConns < 0 {
		return configErr("MaxIdleConns", "must not be negative", c.MaxIdleConns)
	}
	if c.MaxIdleConns > c.MaxOpenConns {
		return configErr("MaxIdleConns", fmt.Sprintf("larger than MaxOpenConns (%d)", c.MaxOpenConns), c.MaxIdleConns)
	}
	if err := c.validateLifecycle(); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"ConnMaxLifetime", c.ConnMaxLifetime}, {"ConnMaxIdleTime", c.ConnMaxIdleTime},
		{"ValidateIdleAfter", c.ValidateIdleAfter},
		{"ConnectTimeout", c.ConnectTimeout},
		{"RetryInitialBackoff", c.RetryInitialBackoff}, {"RetryMaxBackoff", c.RetryMaxBackoff},
		{"LeakThreshold", c.LeakThreshold}, {"SlowQueryThreshold", c.SlowQueryThreshold},
	} {
		if d.v < 0 {
			return configErr(d.field, "must not be negative", d.v)
		}
	}
	if c.AcquireTimeout < 0 && c.AcquireTimeout != NoAcquireTimeout {
		return configErr("AcquireTimeout", "must not be negative (NoAcquireTimeout, -1ns, or DB_ACQUIRE_TIMEOUT=0 turns the bound off)", c.AcquireTimeout)
	}
	if c.RetryMaxAttempts < 0 {
		return configErr("RetryMaxAttempts", "must not be negative", c.RetryMaxAttempts)
	}
	if c.RetryInitialBackoff > c.RetryMaxBackoff {
		return configErr("RetryInitialBackoff", fmt.Sprintf("larger than RetryMaxBackoff (%s)", c.RetryMaxBackoff), c.RetryInitialBackoff)
	}
	return nil
}

// isPostgres reports whether driver speaks libpq's DSN forms; "" is the
// default driver, lib/pq.
func isPostgres(driver string) bool {
	return driver == "" || driver == DriverPostgres || driver == DriverPgx
}

// isAlnum reports an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkHost returns what is wrong with a host, or "". IPv6 addresses are
// written bare ("::1"); a port belongs in Port. PostgreSQL also takes a Unix
// socket directory ("/var/run/postgresql").
func checkHost(driver, host string) string {
	switch {
	case strings.ContainsFunc(host, unicode.IsControl):
		return "contains a control character"
	case strings.Contains(host, ","):
		return "one host only (replicas go in ReplicaHosts, DB_REPLICA_HOSTS; or list several hosts in a DSN)"
	case strings.HasPrefix(host, "/"):
		if driver == DriverMySQL {
			return "a Unix socket is not supported here; use a DSN with unix(/path)"
		}
		return ""
	case strings.HasPrefix(host, "["):
		return "write an IPv6 address without brackets"
	case strings.Contains(host, ":"):
		addr, err := netip.ParseAddr(host) // accepts zones: fe80::1%eth0
		if err != nil {
			return "not a host name or address (put the port in Port / DB_PORT)"
		}
		if strings.ContainsFunc(addr.Zone(), func(r rune) bool { return r >= utf8.RuneSelf || notHostRune(r) }) {
			return "not an IPv6 zone (an interface name or number)"
		}
		return ""
	case strings.ContainsFunc(host, notHostRune):
		return "not a host name or address"
	}
	return ""
}

// notHostRune reports ASCII that has no place in a host name: letters (any
// script), digits, '-', '.' and '_' make one. Other ASCII would reach the
// drivers percent-encoded, which lib/pq's URL parser refuses in a host.
func notHostRune(r rune) bool {
	return r < utf8.RuneSelf && !isAlnum(byte(r)) && r != '-' && r != '.' && r != '_'
}

// checkText rejects text no driver can pass on intact: a NUL byte, which
// ends a string in the PostgreSQL protocol and in SQLite's C API (and which
// pgx refuses); for PostgreSQL, text that is not UTF-8, which lib/pq reads
// as runes and so alters; and a ':' in a MySQL user name, which the
// driver's DSN syntax has no escape for.
func (c Config) checkText() error {
	bad := func(v string) string {
		switch {
		case strings.ContainsRune(v, 0):
			return "contains a NUL byte"
		case isPostgres(c.Driver) && !utf8.ValidString(v):
			return "is not valid UTF-8"
		}
		return ""
	}
	for _, f := range []struct{ name, v string }{
		{"DSN", c.DSN}, {"Host", c.Host}, {"User", c.User}, {"Password", c.Password}, {"Database", c.Database},
	} {
		if reason := bad(f.v); reason != "" {
			return configErr(f.name, reason, nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Params)) { // the same error every time
		reason := bad(k)
		if reason == "" {
			reason = bad(c.Params[k])
		}
		if reason != "" {
			return configErr("Params", reason, nil)
		}
	}
	if c.Driver == DriverMySQL && c.DSN == "" && strings.Contains(c.User, ":") {
		return configErr("User", `contains ':', which a MySQL DSN cannot carry in a user name`, c.User)
	}
	return nil
}

const redacted = redact.Redacted

// String describes c without its password; a DSN is shown with its password
// replaced.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("dbm.Config{")
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key + ":" + a.Value.String())
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so %#v does not reveal the password either.
func (c Config) GoString() string { return c.String() }

// Format implements [fmt.Formatter] so that every verb (%v, %+v, %#v, %s,
// %q, %x, ...) prints the redacted form.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// LogValue implements [slog.LogValuer]: the fields that are set, password
// redacted.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.attrs()...) }

// MarshalJSON implements [json.Marshaler] so that encoding a Config (into a
// log record or a diagnostics page) does not reveal the password: it gives
// what LogValue gives, as an object of the fields that are set (durations
// in nanoseconds, Params as "k=v,..."), with "[redacted]" for secrets. A
// Config decoded from it has no password.
func (c Config) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for _, a := range c.attrs() {
		m[a.Key] = a.Value.Any()
	}
	return json.Marshal(m)
}

func (c Config) attrs() []slog.Attr {
	var as []slog.Attr
	add := func(k string, v any, set bool) {
		if set {
			as = append(as, slog.Any(k, v))
		}
	}
	add("Driver", c.Driver, c.Driver != "")
	add("DSN", redact.DSN(c.Driver, c.DSN), c.DSN != "")
	add("Host", c.Host, c.Host != "")
	add("Port", c.Port, c.Port != 0)
	add("User", c.User, c.User != "")
	add("Password", redacted, c.Password != "")
	add("Database", c.Database, c.Database != "")
	add("SSLMode", c.SSLMode, c.SSLMode != "")
	add("SSLRootCert", c.SSLRootCert, c.SSLRootCert != "")
	add("SSLCert", c.SSLCert, c.SSLCert != "")
	add("SSLKey", c.SSLKey, c.SSLKey != "")
	if len(c.Params) > 0 {
		keys := slices.Sorted(maps.Keys(c.Params))
		parts := make([]string, len(keys))
		for i, k := range keys {
			v := c.Params[k]
			if redact.IsSecretParam(k) {
				v = redacted
			}
			parts[i] = k + "=" + v
		}
		add("Params", strings.Join(parts, ","), true)
	}
	add("MaxOpenConns", c.MaxOpenConns, c.MaxOpenConns != 0)
	add("MaxIdleConns", c.MaxIdleConns, c.MaxIdleConns != 0)
	add("ConnMaxLifetime", c.ConnMaxLifetime, c.ConnMaxLifetime != 0)
	add("ConnMaxIdleTime", c.ConnMaxIdleTime, c.ConnMaxIdleTime != 0)
	add("ConnMaxLifetimeJitter", c.ConnMaxLifetimeJitter, c.ConnMaxLifetimeJitter != 0)
	add("MinIdleConns", c.MinIdleConns, c.MinIdleConns != 0)
	add("ValidateIdleAfter", c.ValidateIdleAfter, c.ValidateIdleAfter != 0)
	add("ConnectTimeout", c.ConnectTimeout, c.ConnectTimeout != 0)
	add("AcquireTimeout", c.AcquireTimeout, c.AcquireTimeout != 0)
	add("RetryMaxAttempts", c.RetryMaxAttempts, c.RetryMaxAttempts != 0)
	add("RetryInitialBackoff", c.RetryInitialBackoff, c.RetryInitialBackoff != 0)
	add("RetryMaxBackoff", c.RetryMaxBackoff, c.RetryMaxBackoff != 0)
	add("LeakThreshold", c.LeakThreshold, c.LeakThreshold != 0)
	add("LeakStacks", c.LeakStacks, c.LeakStacks)
	add("SlowQueryThreshold", c.SlowQueryThreshold, c.SlowQueryThreshold != 0)
	add("ReplicaHosts", strings.Join(c.ReplicaHosts, ","), len(c.ReplicaHosts) > 0)
	add("ReplicaMaxLag", c.ReplicaMaxLag, c.ReplicaMaxLag != 0)
	add("ReplicaPolicy", c.ReplicaPolicy, c.ReplicaPolicy != "")
	add("ReplicaCheckInterval", c.ReplicaCheckInterval, c.ReplicaCheckInterval != 0)
	return as
}
