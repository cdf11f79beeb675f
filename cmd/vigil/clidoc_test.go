package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help")

const cliDoc = "../../docs/cli.md"

// renderCLIDoc is the help of every command, in the order of the tree.
func renderCLIDoc() string {
	root := rootCmd()
	root.InitDefaultCompletionCmd()
	var b strings.Builder
	b.WriteString("# Command reference\n\n")
	b.WriteString("Generated from the commands' own help by `go generate ./cmd/vigil` (TestCLIDoc fails\n")
	b.WriteString("when this file is stale). Every command also takes `-h/--help`. See [config.md](config.md)\n")
	b.WriteString("for the policy file and the environment.\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		b.WriteString("\n## " + c.CommandPath() + "\n\n")
		about := c.Long
		if about == "" {
			about = c.Short
		}
		b.WriteString(strings.TrimSpace(about) + "\n\n```\n" + strings.TrimRight(c.UsageString(), "\n") + "\n```\n")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return b.String()
}

func TestCLIDoc(t *testing.T) {
	// Defaults read from the environment would make the file depend on who runs this.
	for _, k := range []string{"VIGIL_URL", "VIGIL_AMQP_URL", "OS_CLOUD"} {
		t.Setenv(k, "")
	}
	got := renderCLIDoc()
	if *update {
		if err := os.WriteFile(cliDoc, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(cliDoc)
	if err != nil {
		t.Fatalf("%v: generate it with `go generate ./cmd/vigil`", err)
	}
	if string(want) != got {
		t.Fatalf("docs/cli.md is stale (a command, flag or help text changed): regenerate it with `go generate ./cmd/vigil` and commit it")
	}
	for _, want := range []string{"## vigil ctl cluster list", "-f, --format string", "## vigil version", "## vigil completion bash"} {
		if !strings.Contains(got, want) {
			t.Errorf("docs/cli.md lacks %q", want)
		}
	}
}
