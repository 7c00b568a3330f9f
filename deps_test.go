package bildrum_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bildrum/bildrum"

// allowedSiblings lists, per package, the other packages of the module it
// may import besides the root domain package. Capability packages must not
// reach into each other; only cmd/bildrum wires them together.
var allowedSiblings = map[string][]string{
	"archive":    {},
	"auth":       {"problem"},
	"bench":      {},
	"dicomweb":   {"archive", "auth", "problem"},
	"federation": {"auth", "problem"},
	"web":        {"auth", "problem", "consent", "register", "quality", "tlog"},
	"consent":    {},
	"sqlstore":   {},
	"synth":      {"register"},
	"register":   {},
	"problem":    {},
	"quality":    {},
	"recruit":    {},
	"query":      {"internal/keyfile"},
	"tlog":       {"problem", "internal/keyfile"},
	"docs":       {},
}

// TestDependenciesPointInward holds DESIGN.md's layout: the domain imports
// nothing of the module and no net/http; a capability package imports only
// the domain and the few shared HTTP helpers listed above.
func TestDependenciesPointInward(t *testing.T) {
	for _, imp := range imports(t, ".") {
		if strings.HasPrefix(imp, module) || imp == "net/http" {
			t.Errorf("domain package imports %s", imp)
		}
	}
	dirs, _ := filepath.Glob("*/*.go")
	for _, f := range dirs {
		if _, listed := allowedSiblings[filepath.Dir(f)]; !listed {
			pkg := filepath.Dir(f)
			t.Errorf("package %s is not in allowedSiblings: add it with what it may import", pkg)
		}
	}
	for pkg, allowed := range allowedSiblings {
		for _, imp := range imports(t, pkg) {
			rest, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if !slices.Contains(allowed, rest) {
				t.Errorf("package %s imports %s: wire capabilities together in cmd/bildrum instead", pkg, imp)
			}
		}
	}
}

// imports returns what the non-test Go files of dir import.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out = append(out, p)
		}
	}
	return out
}
