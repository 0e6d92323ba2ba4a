package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"time"

	"github.com/jmoiron/sqlx"
)

// ConnectTracer is an optional interface for a [Tracer]: when the tracer
// given to [WithTracer] implements it, the pool that [New] opens reports
// every new connection it makes, and how long the driver took to make it
// (OpenTelemetry's db.client.connection.create_time). The pool that [Wrap]
// is given is the caller's and reports nothing.
type ConnectTracer interface {
	// TraceConnect is called after each attempt to open a connection, on
	// the goroutine that needed it, with the context database/sql passed
	// the driver. res.Duration is the time the driver took; res.Err is the
	// driver's error (with a text that contained the password withheld)
	// and res.Class its class, when the connection failed.
	TraceConnect(ctx context.Context, res TraceResult)
}

// openTracedPool is openPool, with every new connection timed for the
// tracer t when it is a [ConnectTracer].
func openTracedPool(driverName, dsn string, t Tracer, now func() time.Time, secret secrets) (*sqlx.DB, error) {
	ct, ok := t.(ConnectTracer)
	if !ok {
		return openPool(driverName, dsn)
	}
	var c driver.Connector
	if driverName == DriverPostgres {
		c = newPQConnector(dsn) // as openPool does
	} else {
		probe, err := sql.Open(driverName, dsn) // only looks the driver up
		if err != nil {
			return nil, err
		}
		d := probe.Driver()
		_ = probe.Close()
		if dc, ok := d.(driver.DriverContext); ok {
			if c, err = dc.OpenConnector(dsn); err != nil {
				return nil, err
			}
		} else {
			c = dsnConnector{d: d, dsn: dsn}
		}
	}
	return sqlx.NewDb(sql.OpenDB(&timedConnector{Connector: c, tracer: ct, now: now, secret: secret}), driverName), nil
}

// timedConnector tells a ConnectTracer how long each Connect took.
type timedConnector struct {
	driver.Connector
	tracer ConnectTracer
	now    func() time.Time
	secret secrets
}

func (c *timedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	start := c.now()
	conn, err := c.Connector.Connect(ctx)
	res := TraceResult{Duration: c.now().Sub(start), Rows: -1}
	if err != nil {
		res.Err, res.Class = c.secret.scrubConnect(err), Classify(err)
	}
	c.tracer.TraceConnect(ctx, res)
	return conn, err
}

// dsnConnector is a Connector for a driver without one, as database/sql
// makes for itself.
type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }
