package dbmpgx_test

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/dbmanager-go/dbmanager/dbm/dbmpgx"
	"github.com/dbmanager-go/dbmanager/dbm/internal/dialwatch"
	"github.com/dbmanager-go/dbmanager/dbm/internal/testsrv"
)

// watch is a dialwatch.Watch that records what it was told.
type watch struct{ conn, bytes atomic.Bool }

func (w *watch) Connected() { w.conn.Store(true) }
func (w *watch) Answered()  { w.bytes.Store(true) }

// TestWatchedConnector: the pgx connector the package gives package dbm
// tells a probe's Watch that its connection is made, and that the server
// sent bytes only once it has: a listener that accepts and stays silent
// (a black hole's proxy, a hung server) is connected but has not answered;
// one that writes a byte has.
func TestWatchedConnector(t *testing.T) {
	if dialwatch.Pgx == nil {
		t.Fatal("dialwatch.Pgx is nil: the package's init did not set it")
	}
	if conn, bytes := connectWatched(t, nil); !conn || bytes {
		t.Errorf("silent server: the watch was told connected %v, answered %v; want true, false", conn, bytes)
	}
	if conn, bytes := connectWatched(t, []byte("E")); !conn || !bytes {
		t.Errorf("server that answers: the watch was told connected %v, answered %v; want true, true", conn, bytes)
	}
}

// connectWatched connects with the package's pgx connector to a fake
// server that writes reply, and reports what the connection attempt told
// its Watch.
func connectWatched(t *testing.T, reply []byte) (connected, answered bool) {
	t.Helper()
	port := testsrv.FakeServer(t, reply)
	c, err := dialwatch.Pgx("postgres://u@127.0.0.1:" + strconv.Itoa(port) + "/d?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	w := &watch{}
	ctx, cancel := context.WithTimeout(dialwatch.With(context.Background(), w), 200*time.Millisecond)
	defer cancel()
	if conn, err := c.Connect(ctx); err == nil {
		_ = conn.Close()
		t.Fatal("Connect to a fake server succeeded")
	}
	return w.conn.Load(), w.bytes.Load()
}

// TestWatchedConnectorParsesPerConnection: like pgx's own driver, the
// connector reads its configuration again for every connection, so that
// what parsing reads besides the DSN (PG* variables here; a password file
// or certificates in production) is current: a rotated password is used by
// the next connection without a restart.
func TestWatchedConnectorParsesPerConnection(t *testing.T) {
	addr := "127.0.0.1:5432"
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		testsrv.SkipOrFail(t, "PostgreSQL at "+addr, err)
	} else {
		c.Close()
	}
	connector, err := dialwatch.Pgx("host=127.0.0.1 port=5432 dbname=test user=postgres sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxIdleConns(0) // every query on a new connection
	for _, name := range []string{"dbmpgx-parse-a", "dbmpgx-parse-b"} {
		t.Setenv("PGAPPNAME", name)
		var got string
		if err := db.QueryRowContext(t.Context(), "SELECT current_setting('application_name')").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != name {
			t.Errorf("application_name %q on a connection made after PGAPPNAME=%s; the configuration was not read again", got, name)
		}
	}
}
