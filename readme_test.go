package arch_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's `go build -o vigil ./cmd/vigil` wrote into the vigil/ folder of
// the repository (or failed: "already exists and is a directory"), so its next
// line, `./vigil serve`, failed. Every `go build -o PATH` of the README must
// write a file (not into a directory of the repo), and every `./PROGRAM` run in
// the same code block must be a program a build of that block wrote.
func TestReadmeBuildOutputsAreRunnable(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	buildOut := regexp.MustCompile(`\bgo build\b.*\s-o\s+(\S+)`)
	builds := 0
	for i, block := range codeBlocks(string(data)) {
		built := map[string]bool{}
		for _, line := range block {
			if m := buildOut.FindStringSubmatch(line); m != nil {
				builds++
				out := filepath.Clean(m[1])
				if fi, err := os.Stat(out); err == nil && fi.IsDir() {
					t.Errorf("README code block %d: `%s` writes into the repository's directory %s/, not a program %s", i+1, line, out, out)
				}
				built[out] = true
			}
		}
		for _, line := range block {
			fields := strings.Fields(line)
			if len(fields) == 0 || !strings.HasPrefix(fields[0], "./") {
				continue
			}
			if prog := filepath.Clean(fields[0]); !built[prog] {
				t.Errorf("README code block %d: `%s` runs %s, which no `go build -o` of the block writes", i+1, line, fields[0])
			}
		}
	}
	if builds == 0 {
		t.Fatal("the README has no `go build -o` line: the test reads nothing")
	}
}

// codeBlocks returns the lines of each fenced code block of a Markdown document.
func codeBlocks(doc string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if in {
				blocks = append(blocks, cur)
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return blocks
}
