package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// What the toolchain stamps (vcs.*) is shown; -ldflags -X values win over it.
func TestReadBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-05-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := readBuildInfo(bi, true)
	want := buildInfo{Version: "dev", Commit: "0123abcd", Date: "2026-05-01T10:00:00Z", Modified: true, Go: "go1.26.0"}
	if got != want {
		t.Fatalf("stamped: %+v, want %+v", got, want)
	}
	var b strings.Builder
	got.text(&b)
	if !strings.Contains(b.String(), "commit: 0123abcd (modified: built with uncommitted changes)\ndate:   2026-05-01T10:00:00Z") {
		t.Fatalf("text:\n%s", b.String())
	}
	version, commit, date = "1.4.0", "feedface", "2026-06-01"
	t.Cleanup(func() { version, commit, date = "dev", "", "" })
	bi.Main.Version = "v1.3.9"
	if got := readBuildInfo(bi, true); got.Version != "1.4.0" || got.Commit != "feedface" || got.Date != "2026-06-01" {
		t.Fatalf("-ldflags -X values lose to the stamped ones: %+v", got)
	}
	version = "dev"
	if got := readBuildInfo(bi, true); got.Version != "v1.3.9" {
		t.Fatalf("a module version (go install @v1.3.9) is not shown: %+v", got)
	}
}

func TestVersionCmd(t *testing.T) {
	out, err := vigilCmd(t, "version", "-f", "json")
	var b buildInfo
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.Version == "" || !strings.HasPrefix(b.Go, "go") {
		t.Fatalf("version -f json: %v\n%s", err, out)
	}
	if out, err := vigilCmd(t, "version"); err != nil || !strings.HasPrefix(out, "vigil ") || !strings.Contains(out, "commit: ") {
		t.Fatalf("version: %v %q", err, out)
	}
	if _, err := vigilCmd(t, "version", "-f", "xml"); err == nil || !strings.Contains(err.Error(), "want text, json or yaml") {
		t.Fatalf("version -f xml: %v", err)
	}
}
