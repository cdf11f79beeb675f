package sim

import (
	"strings"
	"testing"
)

func TestOneSeed(t *testing.T) {
	cfg := SmallConfig()
	cfg.Log = true
	r, err := Run(1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", r.Stats)
	t.Log("\n" + strings.Join(r.Log, "\n"))
	for _, v := range r.Violations {
		t.Error(v)
	}
}

func TestSweepSmall(t *testing.T) {
	res := Sweep(1, 300, SmallConfig(), 0)
	t.Logf("%d seeds in %s (%.0f/min), stats %+v", res.Seeds, res.Elapsed, res.SeedsPerMinute(), res.Stats)
	for _, err := range res.Errors {
		t.Error(err)
	}
	for i, f := range res.Failed {
		if i > 5 {
			break
		}
		t.Errorf("seed %d: %v\n%s", f.Seed, f.Violations, strings.Join(f.Log, "\n"))
	}
}
