package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// `ctl delete-cluster 'q?x=1'` deleted cluster q: every path segment is escaped.
func TestCtlEscapesPathSegments(t *testing.T) {
	url, ids := startVigil(t)
	if _, err := vigilCmd(t, "ctl", "create-cluster", "q", "--members", ids[0], "--server", url); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"q?x=1", "q#frag", "q/../q", "x/../../v1/clusters/q"} {
		_, err := vigilCmd(t, "ctl", "delete-cluster", name, "--server", url)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("delete-cluster %q: %v, want cluster not found", name, err)
		}
	}
	for _, args := range [][]string{{"cluster", "add", "q?x=1", ids[1]}, {"host", "maintenance", "on", "host-0?x=1"}, {"host", "drain", "host-0/x"}} {
		if _, err := vigilCmd(t, append(append([]string{"ctl"}, args...), "--server", url)...); err == nil {
			t.Fatalf("ctl %v reached another resource", args)
		}
	}
	out, err := vigilCmd(t, "ctl", "status", "-o", "json", "--server", url)
	if err != nil || !strings.Contains(out, `"name": "q"`) {
		t.Fatalf("cluster q is gone after deletes of other names: %v\n%s", err, out)
	}
	// The CLI refuses a bad name before sending it.
	if _, err := vigilCmd(t, "ctl", "create-cluster", "a/b", "--members", ids[1], "--server", url); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Fatalf("create-cluster a/b: %v, want the name refused", err)
	}
}

// Names stored before they were checked (a/b, one with an escape sequence and a
// newline) are shown escaped by `ctl status`, never repaint the terminal, and
// can be deleted.
func TestCtlEscapesWhatTheServerSays(t *testing.T) {
	db := filepath.Join(t.TempDir(), "v.db")
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	evil := "red\x1b[31m\x1b[2J\nFAKE\tROW"
	// The simulated cloud numbers its servers srv-00001, srv-00002, ... in order.
	for i, name := range []string{"a/b", evil} {
		c := model.Cluster{Name: name, Members: []string{[]string{"srv-00001", "srv-00002"}[i]}, Desired: 1, Policy: "default"}
		if err := s.CreateCluster(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	url, ids := startVigilOn(t, []string{"host-0", "host-1", "host\x1b]0;owned\x07-2"}, db)
	if ids[0] != "srv-00001" || ids[1] != "srv-00002" {
		t.Fatalf("server IDs %v: the test assumed srv-00001, srv-00002", ids)
	}
	out, err := vigilCmd(t, "ctl", "status", "--server", url)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\nFAKE") {
		t.Fatalf("status prints the server's control characters:\n%q", out)
	}
	for _, want := range []string{`red\x1b[31m\x1b[2J\nFAKE\tROW`, `host\x1b]0;owned\a-2`, "a/b "} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if _, err := vigilCmd(t, "ctl", "delete-cluster", "a/b", "--server", url); err != nil {
		t.Fatalf("delete-cluster a/b: %v", err)
	}
	if _, err := vigilCmd(t, "ctl", "delete-cluster", evil, "--server", url); err != nil {
		t.Fatalf("delete-cluster of the name with escapes: %v", err)
	}
	out, _ = vigilCmd(t, "ctl", "status", "-o", "json", "--server", url)
	if !strings.Contains(out, `"clusters": []`) {
		t.Fatalf("clusters left after deleting both:\n%s", out)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"web-1":         "web-1",
		"héllo ünïcode": "héllo ünïcode",
		"a\nb":          `a\nb`,
		"\x1b[2J":       `\x1b[2J`,
		"bad\xffbyte":   `bad\xffbyte`,
		"\u202eevil":    `\u202eevil`, // right-to-left override
		"keep \uFFFD":   "keep \uFFFD",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// The list commands (-f table, value) escape too; -f json keeps the data as is
// (JSON escapes it).
func TestCtlListEscapes(t *testing.T) {
	url, _ := startVigilOn(t, []string{"host-0", "host\x1b[2J-1"}, filepath.Join(t.TempDir(), "v.db"))
	for _, f := range []string{"table", "value"} {
		out, err := vigilCmd(t, "ctl", "host", "list", "-f", f, "--server", url)
		if err != nil || strings.Contains(out, "\x1b") || !strings.Contains(out, `host\x1b[2J-1`) {
			t.Fatalf("host list -f %s: %v\n%q", f, err, out)
		}
	}
	out, err := vigilCmd(t, "ctl", "host", "list", "-f", "json", "--server", url)
	if err != nil || !strings.Contains(out, `host\u001b[2J-1`) {
		t.Fatalf("host list -f json: %v\n%s", err, out)
	}
}
