package vigil

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/policy-bad")

// Each malformed policy file of testdata/policy-bad (a mistake users make) gets
// exactly one error, the one its golden .err file holds: the file, the line of the
// mistake, the field's whole path, what is wrong and what is allowed.
// `go test ./vigil -run TestPolicyCheckBadFiles -update` rewrites the goldens;
// review their diff.
func TestPolicyCheckBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/policy-bad/*.yaml")
	if err != nil || len(files) < 25 {
		t.Fatalf("%d bad policy files (%v), want at least 25", len(files), err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, errs := CheckConfig(name, data)
			var got strings.Builder
			for _, e := range errs {
				got.WriteString(e.Error() + "\n")
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden: %v (run with -update to write it)", err)
			}
			if len(errs) != 1 {
				t.Fatalf("%d errors, want exactly one:\n%s", len(errs), got.String())
			}
			if got.String() != string(want) {
				t.Fatalf("error\n  %s want\n  %s", got.String(), want)
			}
			// The one style: FILE:LINE: field.path: what is wrong: what is allowed.
			if !errorStyle.MatchString(errs[0].Error()) {
				t.Fatalf("%q is not in the style FILE:LINE: path: what is wrong: what is allowed", errs[0])
			}
			// ParseConfig, which `vigil serve` uses, refuses the file with that same first error.
			if _, err := ParseConfig(data); err == nil || !strings.HasSuffix(err.Error(), strings.TrimPrefix(errs[0].Error(), name)) {
				t.Fatalf("ParseConfig: %v, want the same error", err)
			}
		})
	}
}

// FILE:LINE: then at least "what is wrong: what is allowed" (the path is left out
// only for a mistake of the file itself: YAML syntax, a second document).
var errorStyle = regexp.MustCompile(`^[^:\n]+:[1-9][0-9]*: ([a-z_]+[a-z0-9_.\[\]-]*: )?[^\n]+: [^\n]+$`)

// The good files load, and their policies are the ones the engine accepts.
func TestPolicyCheckGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/policy-good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good policy files")
	}
	for _, path := range files {
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for name, p := range cfg.Policies {
			if err := p.Validate(); err != nil {
				t.Fatalf("%s: policy %s: %v", path, name, err)
			}
		}
	}
	cfg, err := LoadConfig("testdata/policy-good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	web := cfg.Policies["web"]
	if web.Proof() != "bmc-or-fabric" || web.Priority != 5 || len(web.ReservedHosts) != 2 ||
		web.AttemptsFor("crashed") != 3 || web.DeadlineFor("crashed").String() != "5m0s" || web.AttemptsFor("hung") != 8 ||
		strings.Join(actions(web.LadderFor("crashed")), ",") != "reboot,rebuild" ||
		strings.Join(actions(web.LadderFor("host-isolated")), ",") != "live-migrate,cold-migrate" ||
		strings.Join(actions(web.LadderFor("hung")), ",") != "hard-reboot,rebuild" ||
		web.DeadlineFor("host-dead").String() != "15m0s" {
		t.Fatalf("web: %+v", web)
	}
	if m := cfg.Policies["manual"]; m.Proof() != "service" || m.LadderFor("host-dead")[0] != "notify-only" || m.Priority != 1 {
		t.Fatalf("manual: %+v", m)
	}
}

// Independent mistakes are all found, each on its line; ParseConfig gives the first.
func TestCheckConfigFindsEveryMistake(t *testing.T) {
	src := `limits:
  max_concurrent: 0
policies:
  - name: web
    step_timout: 30s
    priority: 9
  - name: db
    ladders: {host-isolated: [evacuate]}
agents:
  hosts:
    - {name: h1, token: short}
`
	_, errs := CheckConfig("p.yaml", []byte(src))
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.SplitN(e.Error(), ": ", 3)[0]+": "+e.Path)
	}
	want := "p.yaml:2: limits.max_concurrent|p.yaml:5: policies[0].step_timout|p.yaml:6: policies[0].priority|" +
		"p.yaml:8: policies[1].ladders.host-isolated[0]|p.yaml:11: agents.hosts[0].token"
	if got := strings.Join(lines, "|"); got != want {
		t.Fatalf("errors at\n  %s\nwant\n  %s\n%v", got, want, errs)
	}
	if _, err := ParseConfig([]byte(src)); err == nil || !strings.HasPrefix(err.Error(), "policy file:2: limits.max_concurrent: ") {
		t.Fatalf("ParseConfig: %v, want the first mistake", err)
	}
}

func actions[T ~string](l []T) []string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = string(a)
	}
	return s
}
