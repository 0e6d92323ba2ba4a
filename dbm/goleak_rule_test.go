package dbm_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

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
