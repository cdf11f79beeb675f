package arch_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The functional core decides; it never does I/O or reads the clock.
var (
	core    = []string{"model", "detect", "plan"}
	allowed = []string{"cmp", "errors", "fmt", "maps", "math", "slices", "sort", "strconv", "strings", "time",
		"github.com/vigil-ha/vigil/model"}
	// Clock reads and timers: time is an input of the core.
	clockFuncs = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}
)

// violations returns what a Go source file does that the core must not.
func violations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if !slices.Contains(allowed, path) {
			out = append(out, fset.Position(imp.Pos()).String()+": imports "+path)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains(clockFuncs, sel.Sel.Name) {
			out = append(out, fset.Position(sel.Pos()).String()+": calls time."+sel.Sel.Name)
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == "rand" {
			out = append(out, fset.Position(sel.Pos()).String()+": uses randomness")
		}
		return true
	})
	return out
}

func TestCoreIsPure(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	for _, dir := range core {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
			if err == nil {
				f, err = parser.ParseFile(fset, p, nil, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, v := range violations(fset, f) {
				t.Errorf("%s (the core may import only %v)", v, allowed)
			}
		}
	}
	if files < len(core) {
		t.Fatalf("found only %d core files: is the test run from the module root?", files)
	}
}

// The checker itself must catch what it is for.
func TestCoreCheckCatchesIO(t *testing.T) {
	src := `package plan
import ("os"; "net/http"; "database/sql"; "time")
func f() { _ = time.Now(); _ = os.Args; _ = http.Get; _ = sql.Open }`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(violations(fset, f), "\n")
	for _, want := range []string{"imports os", "imports net/http", "imports database/sql", "calls time.Now"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; reported:\n%s", want, got)
		}
	}
	_ = os.Getenv
}
