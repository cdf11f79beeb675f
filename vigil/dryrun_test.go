package vigil

import (
	"strings"
	"testing"
)

// dry_run at the top level makes every policy dry-run; a policy's own key only it;
// a value that is not a boolean is refused with its line and field.
func TestConfigDryRun(t *testing.T) {
	cfg, err := ParseConfig([]byte("dry_run: true\npolicies:\n  - name: gold\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default", "gold"} {
		if !cfg.Policies[name].DryRun {
			t.Errorf("top-level dry_run: policy %s is not dry-run", name)
		}
	}
	cfg, err = ParseConfig([]byte("policies:\n  - name: gold\n    dry_run: true\n  - name: silver\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Policies["gold"].DryRun || cfg.Policies["silver"].DryRun || cfg.Policies["default"].DryRun {
		t.Errorf("per-policy dry_run: gold %v silver %v default %v, want true false false",
			cfg.Policies["gold"].DryRun, cfg.Policies["silver"].DryRun, cfg.Policies["default"].DryRun)
	}
	for doc, want := range map[string]string{
		"dry_run: maybe\n":                           "1: dry_run: ",
		"policies:\n  - name: g\n    dry_run: 3\n":   "3: policies[0].dry_run: ",
		"policies:\n  - name: g\n    dry_rn: true\n": "policies[0].dry_rn",
	} {
		_, err := ParseConfig([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", doc, err, want)
		}
	}
}
