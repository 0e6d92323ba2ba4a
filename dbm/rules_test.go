package dbm_test

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestConnectRetriesLogNoSecrets(t *testing.T) {
	const secret = "Kx7-log-secret"
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dsn := "postgres://app:" + secret + "@127.0.0.1:" + strconv.Itoa(freePort(t)) + "/db?sslmode=disable"
	_, err := dbm.New(ctx, dbm.Config{DSN: dsn}, dbm.WithLogger(logger))
	if !errors.Is(err, dbm.ErrConnection) {
		t.Fatalf("err = %v, want ErrConnection", err)
	}
	if !strings.Contains(buf.String(), "not answering yet") {
		t.Fatalf("no retry was logged: %s", buf.String())
	}
	for what, out := range map[string]string{"log": buf.String(), "error": err.Error()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the password: %s", what, out)
		}
	}
}

// TestEveryTestPackageChecksLeaks keeps goleak in the TestMain of every
// package of the repository that has tests (both modules, examples and
// internal packages included), so that a new package cannot leave
// goroutines behind unnoticed.
func TestEveryTestPackageChecksLeaks(t *testing.T) {
	root := ".." // the repository, from dbm/
	checked := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir // what the go command ignores
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if _, seen := checked[dir]; !seen {
			checked[dir] = false
		}
		if verifiesTestMain(t, path) {
			checked[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"dbm", "dbm/internal/sqltext", "examples/quickstart", "bench", "bench/cmd/benchdoc"} {
		if _, ok := checked[filepath.Join(root, must)]; !ok {
			t.Errorf("the walk did not see %s: the check would pass without looking", must)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(checked)) {
		if !checked[dir] {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("%s has tests but no TestMain calling goleak.VerifyTestMain", rel)
		}
	}
}

// verifiesTestMain reports whether the Go file at path declares a TestMain
// that calls goleak.VerifyTestMain.
func verifiesTestMain(t *testing.T, path string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != "TestMain" || fn.Body == nil {
			continue
		}
		found := false
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "VerifyTestMain" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "goleak" {
					found = true
				}
			}
			return !found
		})
		return found
	}
	return false
}
