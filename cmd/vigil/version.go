package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time, e.g.
//
//	go build -ldflags "-X main.version=1.4.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)" -o vigil-bin ./cmd/vigil
//
// Left empty, commit and date come from what the Go toolchain stamped in the
// binary (a build inside a git checkout); version from the module's version
// (`go install ...@v1.4.0`), else "dev".
var commit, date string

// buildInfo is what `vigil version` says.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Date     string `json:"date,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go,omitempty"`
}

// readBuildInfo merges the -X values (they win) with what the toolchain stamped.
func readBuildInfo(bi *debug.BuildInfo, ok bool) buildInfo {
	out := buildInfo{Version: version, Commit: commit, Date: date}
	if !ok {
		return out
	}
	out.Go = bi.GoVersion
	if out.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		out.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				out.Commit = s.Value
			}
		case "vcs.time":
			if date == "" {
				out.Date = s.Value
			}
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}

func (b buildInfo) text(w io.Writer) {
	fmt.Fprintf(w, "vigil %s\n", b.Version)
	commit := b.Commit
	if commit == "" {
		commit = "unknown (built outside a git checkout, no -ldflags -X main.commit)"
	} else if b.Modified {
		commit += " (modified: built with uncommitted changes)"
	}
	fmt.Fprintf(w, "commit: %s\n", commit)
	if b.Date != "" {
		fmt.Fprintf(w, "date:   %s\n", b.Date)
	}
	if b.Go != "" {
		fmt.Fprintf(w, "go:     %s\n", b.Go)
	}
}

func versionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the date it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := readBuildInfo(debug.ReadBuildInfo())
			switch format {
			case "json":
				return writeJSON(cmd.OutOrStdout(), b)
			case "yaml":
				return writeYAML(cmd.OutOrStdout(), b)
			case "text", "table":
				b.text(cmd.OutOrStdout())
				return nil
			}
			return fmt.Errorf("-f/--format: want text, json or yaml, got %q", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "text, json or yaml")
	return cmd
}
