package arch_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ruleLiteral matches a rule ID opening a plan's reason ("capacity-short: ...").
var ruleLiteral = regexp.MustCompile(`^([a-z]+(?:-[a-z]+)+): `)

// ruleIDs parses the Go files of dir and returns the rule IDs they define: string
// constants named Rule* or rule*, and (in plan) reasons that open with an ID.
func ruleIDs(t *testing.T, dir string, literals bool) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	fs := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fs, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i >= len(n.Values) || !strings.HasPrefix(strings.ToLower(name.Name), "rule") {
						continue
					}
					if bl, ok := n.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
						v, _ := strconv.Unquote(bl.Value)
						ids[v] = f + ": " + name.Name
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING && literals {
					v, _ := strconv.Unquote(n.Value)
					if m := ruleLiteral.FindStringSubmatch(v); m != nil {
						ids[m[1]] = f + ": a reason opening with it"
					}
				}
			}
			return true
		})
	}
	return ids
}

// Every rule ID defined in code is listed in docs/rules.md, so the page operators
// read `vigil explain` with cannot fall behind the code.
func TestEveryRuleIDIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range []string{"detect", "plan", "model"} {
		for id, where := range ruleIDs(t, dir, dir == "plan") {
			n++
			if !strings.Contains(string(doc), "`"+id+"`") {
				t.Errorf("rule ID %q (%s) is not listed in docs/rules.md: add one line saying what it means", id, where)
			}
		}
	}
	if n < 40 {
		t.Errorf("found only %d rule IDs in detect, plan and model: the parser lost some", n)
	}
}
