package vigil

import (
	"strings"
	"testing"
	"time"
)

// The executor's caps are read from the limits section; each bad value is named by
// its line and path, and a misspelt key gets a suggestion.
func TestLimitsParallelKeys(t *testing.T) {
	cfg, err := ParseConfig([]byte("limits: {max_parallel: 3, per_host: 1, per_segment: 2, actions_per_minute: 0, bmc_timeout: 3s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.MaxParallel != 3 || l.PerHost != 1 || l.PerSegment != 2 || l.ActionsPerMinute != 0 || l.BMCTimeout != 3*time.Second {
		t.Fatalf("limits: %+v", l)
	}
	def, err := ParseConfig([]byte("limits: {max_concurrent: 5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := def.Limits; l.MaxParallel != 8 || l.PerHost != 4 || l.PerSegment != 6 || l.ActionsPerMinute != 120 {
		t.Fatalf("defaults: %+v", l)
	}
	src := `limits:
  max_parallel: 0
  per_host: -1
  per_segment: many
  actions_per_minute: -5
  max_paralel: 4
  bmc_timeout: 1h
`
	_, errs := CheckConfig("p.yaml", []byte(src))
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.SplitN(e.Error(), ": ", 3)[0]+": "+e.Path)
	}
	want := "p.yaml:2: limits.max_parallel|p.yaml:3: limits.per_host|p.yaml:4: limits.per_segment|" +
		"p.yaml:5: limits.actions_per_minute|p.yaml:6: limits.max_paralel|p.yaml:7: limits.bmc_timeout"
	if got := strings.Join(lines, "|"); got != want {
		t.Fatalf("errors at\n  %s\nwant\n  %s\n%v", got, want, errs)
	}
	if s := errs[len(errs)-2].Error(); !strings.Contains(s, "max_parallel") {
		t.Fatalf("no suggestion for a misspelt key: %s", s)
	}
}
