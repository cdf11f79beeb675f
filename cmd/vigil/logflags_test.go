package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// A wrong --log-format or --log-level stops serve and demo at once, naming the flag
// and what it accepts.
func TestLogFlagsRefuseBadValues(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--os-cloud", "x", "--db", db, "--log-format", "xml"}, []string{"--log-format", `"xml"`, "text or json"}},
		{[]string{"serve", "--os-cloud", "x", "--db", db, "--log-level", "loud"}, []string{"--log-level", `"loud"`, "debug, info, warn or error"}},
		{[]string{"demo", "--listen", "127.0.0.1:0", "--duration", "1s", "--log-format", "yaml"}, []string{"--log-format", `"yaml"`}},
		{[]string{"demo", "--listen", "127.0.0.1:0", "--duration", "1s", "--log-level", "trace"}, []string{"--log-level", `"trace"`}},
	} {
		cmd := rootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(c.args)
		err := cmd.ExecuteContext(context.Background())
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %s", c.args, err, w)
			}
		}
		if out.Len() > 0 {
			t.Errorf("%v: ran before refusing the flag: %s", c.args, out.String())
		}
	}
}

// --log-format json writes one JSON object a line; --log-level drops what is
// less severe.
func TestLogFlagsFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	lf := logFlags{format: "json", level: "warn"}
	log, err := lf.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("not shown")
	log.Warn("reconcile", "err", "cloud unreachable")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want the warning only, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "reconcile" || rec["err"] != "cloud unreachable" {
		t.Fatalf("record %v", rec)
	}
	buf.Reset()
	lf = logFlags{format: "text", level: "debug"}
	if log, err = lf.logger(&buf); err != nil {
		t.Fatal(err)
	}
	log.Debug("lease", "shard", "all")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=lease shard=all") {
		t.Fatalf("text debug line: %q", got)
	}
}
