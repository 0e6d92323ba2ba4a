package dbm_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryImportsNoHeavyDriver keeps SQLite, pgx and MySQL out of what a
// user of package dbm compiles: they choose their driver and import it.
func TestLibraryImportsNoHeavyDriver(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIP: go command not found: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := string(out)
	for _, banned := range []string{"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "github.com/DATA-DOG/go-sqlmock"} {
		if strings.Contains(deps, banned) {
			t.Errorf("package dbm depends on %s", banned)
		}
	}
	if !strings.Contains(deps, "github.com/lib/pq") {
		t.Error("package dbm should import lib/pq, the default driver")
	}
}
