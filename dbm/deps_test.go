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

// TestLibraryImportsNoPrometheus keeps the Prometheus client out of package
// dbm: only programs that import dbm/dbmprom compile it. The second check
// shows the first can see the dependency where it is.
func TestLibraryImportsNoPrometheus(t *testing.T) {
	checkOptionalDep(t, "github.com/prometheus/client_golang", "./dbmprom")
}

// TestLibraryImportsNoOpenTelemetry keeps OpenTelemetry out of package dbm:
// only programs that import dbm/dbmotel compile it.
func TestLibraryImportsNoOpenTelemetry(t *testing.T) {
	checkOptionalDep(t, "go.opentelemetry.io/", "./dbmotel")
}

// checkOptionalDep checks that package dbm does not depend on client while
// pkg, the package that exports to it, does.
func checkOptionalDep(t *testing.T, client, pkg string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIP: go command not found: %v", err)
	}
	for pkg, want := range map[string]bool{".": false, pkg: true} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		if got := strings.Contains(string(out), client); got != want {
			t.Errorf("%s depends on %s: %v, want %v", pkg, client, got, want)
		}
	}
}
