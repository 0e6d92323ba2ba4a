package dbm

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// closingConnector records Close, and fails or blocks Connect as told.
type closingConnector struct {
	closed bool
	err    error
	block  bool
}

func (c *closingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, c.err
}
func (c *closingConnector) Driver() driver.Driver { return nil }
func (c *closingConnector) Close() error          { c.closed = true; return nil }

// TestDialConnector: the wrapper closes the driver's connector as
// sql.DB.Close would; a failed dial names the dial; one that ConnectTimeout
// cut short says so and is a connection error, not the caller's timeout; a
// dial made for a pool wait runs on the caller's context, not the wait's;
// and a driver without a connector of its own (memdriver) still gets one.
func TestDialConnector(t *testing.T) {
	inner := &closingConnector{err: errors.New("connection refused")}
	c := &dialConnector{Connector: inner, timeout: time.Second}
	if err := c.Close(); err != nil || !inner.closed {
		t.Errorf("Close = %v, inner closed %v; want the driver's connector closed", err, inner.closed)
	}
	_, err := c.Connect(context.Background())
	if err == nil || err.Error() != "dial: connection refused" || dialTimedOut(err) {
		t.Errorf("refused dial: %v, want \"dial: connection refused\"", err)
	}

	c = &dialConnector{Connector: &closingConnector{block: true}, timeout: 20 * time.Millisecond}
	_, err = c.Connect(context.Background())
	if !dialTimedOut(err) || !strings.Contains(err.Error(), "gave up after the connect timeout (20ms)") {
		t.Errorf("dial past ConnectTimeout: %v", err)
	}
	if class, _ := classify(context.Background(), err); class != ClassConnection {
		t.Errorf("dial past ConnectTimeout: class %v, want connection", class)
	}

	mc, err := newDialConnector(memdriver.Name, "1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mc.Connect(context.Background())
	if err != nil {
		t.Fatalf("memdriver through dsnConnector: %v", err)
	}
	_ = conn.Close()
}
