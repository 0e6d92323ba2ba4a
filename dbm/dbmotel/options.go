package dbmotel

import (
	"net"
	"strconv"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Option configures a [Tracer].
type Option interface{ apply(*options) }

type options struct {
	tp        trace.TracerProvider // nil: otel.GetTracerProvider()
	mp        metric.MeterProvider // nil: otel.GetMeterProvider()
	system    string               // db.system.name
	host      string               // server.address; "": not reported
	port      int                  // server.port; 0: not reported
	namespace string               // db.namespace, part of the default pool name
	poolName  string               // db.client.connection.pool.name; "": derived
	queryText bool
	err       error // the first bad option
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithTracerProvider sets where spans go; the default is the global
// provider, otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tp = tp })
}

// WithMeterProvider sets where metrics go; the default is the global
// provider, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.mp = mp })
}

// WithQueryText reports each statement's text as db.query.text. It is off
// by default. The text is what the manager shows a [dbm.Tracer]: the SQL
// with its placeholders (never argument values), cut to 200 characters,
// and withheld when it contains the password.
func WithQueryText(on bool) Option {
	return optionFunc(func(o *options) { o.queryText = on })
}

// WithSystemName sets db.system.name, such as "mariadb" for a MariaDB server
// reached through the mysql driver. [WithConfig] derives it from the
// driver: "postgresql" for postgres and pgx, "mysql", "sqlite".
func WithSystemName(name string) Option {
	return optionFunc(func(o *options) { o.system = name })
}

// WithServer sets server.address and server.port. A port outside 0..65535
// makes [New] fail with a [*dbm.ArgumentError]; 0 leaves server.port out.
func WithServer(host string, port int) Option {
	return optionFunc(func(o *options) {
		if port < 0 || port > 65535 {
			o.fail(&dbm.ArgumentError{Func: "dbmotel.WithServer", Arg: "port", Reason: "not in 0..65535: " + strconv.Itoa(port)})
			return
		}
		o.host, o.port = host, port
	})
}

// WithPoolName sets db.client.connection.pool.name, which tells the pools
// of two managers apart. The default, as the conventions recommend, is
// server.address:server.port/db.namespace (for SQLite the database file),
// or the system name when neither is known.
func WithPoolName(name string) Option {
	return optionFunc(func(o *options) { o.poolName = name })
}

// WithConfig takes db.system.name, server.address, server.port and
// db.namespace from the [dbm.Config] the manager is made with, with the
// defaults [dbm.New] applies (driver postgres, host localhost, the driver's
// port). A Config with a DSN gives no server address: add [WithServer].
// Options after it override what it sets.
func WithConfig(cfg dbm.Config) Option {
	return optionFunc(func(o *options) {
		driver := cfg.Driver
		if driver == "" {
			driver = dbm.DriverPostgres
		}
		o.system = systemName(driver)
		o.namespace = cfg.Database
		if cfg.DSN != "" || driver == dbm.DriverSQLite {
			return
		}
		o.host, o.port = cfg.Host, cfg.Port
		if o.host == "" {
			o.host = "localhost"
		}
		if o.port == 0 {
			o.port = defaultPort[driver]
		}
	})
}

var defaultPort = map[string]int{dbm.DriverPostgres: 5432, dbm.DriverPgx: 5432, dbm.DriverMySQL: 3306}

// systemName is db.system.name for a database/sql driver name.
func systemName(driver string) string {
	switch driver {
	case dbm.DriverPostgres, dbm.DriverPgx:
		return "postgresql"
	case dbm.DriverMySQL:
		return "mysql"
	case dbm.DriverSQLite:
		return "sqlite"
	}
	return "other_sql"
}

func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// pool is db.client.connection.pool.name: the one set, or
// server.address:server.port/db.namespace.
func (o *options) pool() string {
	switch {
	case o.poolName != "":
		return o.poolName
	case o.host != "":
		addr := o.host
		if o.port != 0 {
			addr = net.JoinHostPort(o.host, strconv.Itoa(o.port))
		}
		return addr + "/" + o.namespace
	case o.namespace != "":
		return o.namespace
	}
	return o.system
}
