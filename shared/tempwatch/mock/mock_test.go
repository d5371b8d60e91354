package mock_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// typeNames returns the exported types declared in the Go files (tests
// aside) of the package in dir, only its interfaces when onlyInterfaces.
func typeNames(t *testing.T, dir string, onlyInterfaces bool) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.IsExported() {
				if _, isInterface := ts.Type.(*ast.InterfaceType); isInterface || !onlyInterfaces {
					names[ts.Name.Name] = true
				}
			}
			return true
		})
	}
	return names
}

// TestEveryDomainInterfaceHasAFake keeps this package's map whole: a store
// interface added to the domain needs its fake here, under the same name
// (the compile-time assertions then check the fake's methods).
func TestEveryDomainInterfaceHasAFake(t *testing.T) {
	domain := typeNames(t, "..", true)
	if len(domain) == 0 {
		t.Fatal("no interfaces found in shared/tempwatch: has the domain moved?")
	}
	fakes := typeNames(t, ".", false)
	for name := range domain {
		if !fakes[name] {
			t.Errorf("tempwatch.%s has no fake: add mock.%s (one Fn field per method) and var _ tempwatch.%s = (*mock.%s)(nil)", name, name, name, name)
		}
	}
}
