package dbmpgx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	_ "github.com/dbmanager-go/dbmanager/dbm/dbmpgx"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
	"github.com/dbmanager-go/dbmanager/dbm/internal/lostcommit"
)

// TestPgxLostCommitResolved is TestPostgresLostCommitResolved (package
// dbm) on pgx: 100 cut COMMITs, every answer checked against the table.
func TestPgxLostCommitResolved(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips 100 cut COMMITs; the full suite (make test) runs it")
	}
	const addr = "127.0.0.1:5432"
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		conformance.MissingServer(t, "PostgreSQL at "+addr, err)
	} else {
		c.Close()
	}
	cfg := dbm.Config{Driver: dbm.DriverPgx, Host: "127.0.0.1", Port: 5432, User: "postgres", Database: "test", SSLMode: "disable",
		Params: map[string]string{"application_name": fmt.Sprintf("dbm-lifecycle-pgx-%d", rand.Uint32())}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	admin, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// pgx sends "commit" in lower case.
	r := lostcommit.Run(t, cfg, admin, "commit", 100)
	if r.Wrong != 0 || r.Unknown != 0 || r.Committed != 50 || r.RolledBack != 50 {
		t.Errorf("result %+v, want 50 committed, 50 rolled back, none unknown or wrong", r)
	}
}
