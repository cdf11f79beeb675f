package sim

import (
	"testing"
	"time"
)

// A dry run of a seed mutates nothing and decides as the live run of that seed:
// every incident both runs opened (same subject, same instant) has the same rule,
// policy and first step, and the faults' first incidents are among them.
func TestDryRunDecidesAsLiveAndMutatesNothing(t *testing.T) {
	cfg := SmallConfig()
	cfg.Faults = []string{"host-power-loss", "server-crash"}
	cfg.Settings = []string{}
	for _, seed := range []uint64{1, 3, 5, 6, 7} {
		live, err := Run(seed, cfg)
		if err != nil {
			t.Fatalf("seed %d live: %v", seed, err)
		}
		dcfg := cfg
		dcfg.DryRun = true
		dry, err := Run(seed, dcfg)
		if err != nil {
			t.Fatalf("seed %d dry: %v", seed, err)
		}
		for _, v := range append(live.Violations, dry.Violations...) {
			t.Errorf("seed %d: %s", seed, v)
		}
		if live.Mutations == 0 {
			t.Fatalf("seed %d: the live run made no cloud mutation: nothing to compare", seed)
		}
		if dry.Mutations != 0 {
			t.Errorf("seed %d: the dry run made %d cloud mutations, want 0", seed, dry.Mutations)
		}
		liveBy := map[string]Decision{}
		for _, d := range live.Decisions {
			if _, seen := liveBy[d.Subject]; !seen {
				liveBy[d.Subject] = d
			}
		}
		common, kinds, seen := 0, map[string]bool{}, map[string]bool{}
		for _, d := range dry.Decisions {
			l, ok := liveBy[d.Subject]
			if seen[d.Subject] || !ok || (l.Opened-d.Opened).Abs() > time.Minute {
				// A later failure of the subject, or one only one run saw: the worlds
				// diverged (the live run recovered what the dry run left failed).
				continue
			}
			seen[d.Subject] = true
			common++
			kinds[d.Subject[:4]] = true
			l.Opened = d.Opened // the live run's clock moved on by its actions' latency
			if l != d {
				t.Errorf("seed %d: first decision differs:\n live %s\n dry  %s", seed, l, d)
			}
			if d.Step == "" {
				t.Errorf("seed %d: the dry run planned no step for %s", seed, d)
			}
		}
		if !kinds["host"] || !kinds["serv"] {
			t.Errorf("seed %d: want a host and a server incident in both runs, got %d in common (dry %v, live %v)", seed, common, dry.Decisions, live.Decisions)
		}
	}
}
