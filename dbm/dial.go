package dbm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
	"github.com/dbmanager-go/dbmanager/dbm/internal/redact"
)

// dialConnector wraps the driver's connector of a pool made by [New], so
// that every new connection is bounded by Config.ConnectTimeout on its own
// (not by the wait for a free pool connection, Config.AcquireTimeout), its
// failure says that connecting failed (a [dialError]), and the manager can
// tell a wait for a full pool from a wait for a connection being made (see
// acquireConn). A pool from [Wrap] has the application's own connector and
// none of this.
type dialConnector struct {
	driver.Connector
	timeout time.Duration // Config.ConnectTimeout
	dialing atomic.Int32  // Connect calls under way

	// tracer, when the manager's Tracer is a [ConnectTracer], is told how
	// long each connection took to make; now and secret time it and
	// withhold the password from its error.
	tracer ConnectTracer
	now    func() time.Time
	secret redact.Secrets

	// probe is told how each attempt ended, and fails calls fast while
	// the database is down (see prober); attempts counts the attempts,
	// the probe's included.
	probe    *prober
	attempts atomic.Uint64
	// life, when active, wraps each new connection: its own lifetime,
	// idle validation and hooks (see lifecycle.go).
	life *lifecycle
}

// Connect makes one connection within ConnectTimeout and the caller's
// context.
func (c *dialConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.dialing.Add(1)
	defer c.dialing.Add(-1)
	c.attempts.Add(1)
	t0 := time.Now()
	var start time.Time
	if c.tracer != nil {
		start = c.now()
	}
	conn, err := c.Connector.Connect(dctx)
	if c.tracer != nil {
		res := TraceResult{Duration: c.now().Sub(start), Rows: -1}
		if err != nil {
			res.Err, res.Class = c.secret.ScrubConnect(err), Classify(err)
		}
		c.tracer.TraceConnect(ctx, res)
	}
	if err != nil {
		timedOut := ctx.Err() == nil && dctx.Err() != nil
		err = &dialError{err: err, timeout: c.timeout, timedOut: timedOut}
		c.probe.dialed(err, ctx.Err() != nil, 0)
		return nil, err
	}
	c.probe.dialed(nil, false, time.Since(t0))
	if c.life.active() {
		return c.life.wrap(dctx, conn)
	}
	return conn, nil
}

// probeDial is the prober's connection attempt: the driver's own
// connector, bounded by ctx (ConnectTimeout), the connection closed at
// once. It is counted in attempts but does not report to the prober, which
// records its own verdict. With lib/pq (and pgx with package dbmpgx), the
// connection's dialer tells the [dialwatch.Watch] in ctx when the
// connection is made and when the server first sends bytes.
func (c *dialConnector) probeDial(ctx context.Context) error {
	c.attempts.Add(1)
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return &dialError{err: err, timeout: c.timeout, timedOut: ctx.Err() == context.DeadlineExceeded}
	}
	return conn.Close()
}

// Close closes the driver's connector if it can be closed, as [sql.DB.Close]
// would have without the wrapper.
func (c *dialConnector) Close() error {
	c.probe.close()
	if cl, ok := c.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// dialError is the error of a connection that could not be made: the server
// did not answer, refused, or did not finish the login in time.
type dialError struct {
	err      error
	timeout  time.Duration
	timedOut bool // ConnectTimeout ran out (not the caller's context)
}

func (e *dialError) Error() string {
	if e.timedOut {
		return "dial: gave up after the connect timeout (" + e.timeout.String() + "): " + e.err.Error()
	}
	return "dial: " + e.err.Error()
}
func (e *dialError) Unwrap() error { return e.err }

// dialTimedOut reports whether err is a connection that ConnectTimeout cut
// short: the server is not reachable in time, [ClassConnection], not the
// caller's timeout.
func dialTimedOut(err error) bool {
	var de *dialError
	return errors.As(err, &de) && de.timedOut
}

// newDialConnector finds driverName's connector for dsn, as [sql.Open]
// would, and wraps it.
func newDialConnector(driverName, dsn string, timeout time.Duration) (*dialConnector, error) {
	var c driver.Connector
	watched := true // the connector's dials tell a probe how far they got (see prober.watched)
	switch {
	case driverName == DriverPostgres:
		c = newPQConnector(dsn)
	case driverName == DriverPgx && dialwatch.Pgx != nil:
		var err error
		if c, err = dialwatch.Pgx(dsn); err == nil {
			break
		}
		// A DSN pgx cannot parse: pgx's own connector reports it on
		// each connection, as it does without package dbmpgx.
		fallthrough
	default:
		watched = false
		probe, err := sql.Open(driverName, dsn) // opens no connection
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
	dc := &dialConnector{Connector: c, timeout: timeout}
	dc.probe = newProber(dc.probeDial, watched, timeout)
	return dc, nil
}

// dsnConnector is database/sql's connector for a driver without one of its
// own.
type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// connecting describes the connections being made, for a pool timeout's
// message: "" when none is.
func (c *dialConnector) connecting() string {
	if c == nil {
		return ""
	}
	if n := c.dialing.Load(); n > 0 {
		return ", " + strconv.Itoa(int(n)) + " of them still connecting"
	}
	return ""
}
