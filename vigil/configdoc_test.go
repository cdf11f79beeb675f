package vigil

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

// Every key the policy file reader accepts is documented in docs/config.md: the
// keys are read from the reader's own source (each c.mapping call's list of allowed
// keys, and the sections), so a key added to the reader and not to the docs fails here.
func TestConfigDocCoversEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := configKeys(t)
	if len(keys) < 60 {
		t.Fatalf("found %d keys in the reader's source; the scan is broken", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "."+k+"`") {
			t.Errorf("docs/config.md does not document the policy file key `%s`", k)
		}
	}
}

// configKeys collects the string literals of the package-level key lists
// (sections, policyFields, ...) and of the []string literals given to c.mapping.
func configKeys(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	vars := map[string][]string{} // package-level []string var -> its literals
	var calls [][]ast.Expr        // c.mapping calls' last arguments
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.ValueSpec:
				for i, id := range x.Names {
					if i < len(x.Values) {
						vars[id.Name] = literals(x.Values[i])
					}
				}
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "mapping" && len(x.Args) == 4 {
					calls = append(calls, []ast.Expr{x.Args[3]})
				}
			}
			return true
		})
	}
	keys := slices.Clone(vars["sections"])
	for _, c := range calls {
		switch a := c[0].(type) {
		case *ast.Ident:
			keys = append(keys, vars[a.Name]...)
		default:
			keys = append(keys, literals(a)...)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func literals(e ast.Expr) []string {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range cl.Elts {
		if bl, ok := el.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			if s, err := strconv.Unquote(bl.Value); err == nil {
				out = append(out, s)
			}
		}
	}
	return out
}
