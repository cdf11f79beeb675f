package sim

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func run(t *testing.T, seed uint64, cfg Config) Result {
	t.Helper()
	r, err := Run(seed, cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return r
}

func TestSameSeedSameLog(t *testing.T) {
	cfg := SmallConfig()
	cfg.Log = true
	for _, seed := range []uint64{1, 61, 178} {
		a, b := run(t, seed, cfg), run(t, seed, cfg)
		if len(a.Log) < 10 {
			t.Fatalf("seed %d: log of %d lines is too short to compare", seed, len(a.Log))
		}
		if !slices.Equal(a.Log, b.Log) {
			for i := range min(len(a.Log), len(b.Log)) {
				if a.Log[i] != b.Log[i] {
					t.Fatalf("seed %d: runs differ at line %d:\n%s\n%s", seed, i, a.Log[i], b.Log[i])
				}
			}
			t.Fatalf("seed %d: logs differ in length: %d vs %d", seed, len(a.Log), len(b.Log))
		}
	}
	x, y := run(t, 1, cfg), run(t, 2, cfg)
	if slices.Equal(x.Log, y.Log) {
		t.Fatal("seeds 1 and 2 gave the same log")
	}
}

// The seeds that once found bugs run on every go test.
func TestRegressionSeeds(t *testing.T) {
	f, err := os.Open("testdata/seeds")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		seed, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil || len(fields) < 2 {
			t.Fatalf("testdata/seeds: bad line %q", line)
		}
		cfg := SmallConfig()
		if fields[1] == "default" {
			cfg = DefaultConfig()
		}
		r := run(t, seed, cfg)
		for _, v := range r.Violations {
			t.Errorf("seed %d (%s): %v\nreplay: %s", seed, line, v, ReplayCommand(seed, cfg))
		}
		n++
	}
	if n == 0 {
		t.Fatal("no regression seeds")
	}
}

// A fixed sweep on every go test: small worlds, all faults.
func TestSweep(t *testing.T) {
	n := uint64(400)
	if testing.Short() || raceEnabled {
		n = 60 // the race detector makes each seed ten times slower; CI sweeps without it
	}
	cfg := SmallConfig()
	res := Sweep(context.Background(), 1000, 1000+n-1, cfg, 0)
	t.Logf("%d seeds in %s (%.0f seeds/min); %+v", res.Seeds, res.Elapsed.Round(1e6), res.SeedsPerMinute(), res.Stats)
	for _, err := range res.Errors {
		t.Error(err)
	}
	for _, f := range res.Failed {
		t.Errorf("seed %d: %v\nreplay: %s", f.Seed, f.Violations, ReplayCommand(f.Seed, cfg))
	}
	if res.Stats.Incidents == 0 || res.Stats.Restarts == 0 || res.Stats.Escalated == 0 {
		t.Fatalf("the sweep exercised too little: %+v", res.Stats)
	}
}

// Each checker must catch the bug it is for: a sweep on a deliberately broken
// engine reports the right invariant, with the seed.
func TestCheckersCatchSabotage(t *testing.T) {
	cases := []struct {
		sabotage string
		faults   []string
	}{
		{"skip-fence", []string{"host-power-loss", "host-isolation"}},
		{"repeat-after-restart", []string{"vigil-crash-step", "server-crash", "host-power-loss"}},
		{"ignore-limits", []string{"host-power-loss"}},
		{"ignore-brake", []string{"segment-partition"}},
		{"fence-wrong-host", []string{"host-power-loss"}},
		{"give-up-silently", []string{"action-error"}},
		{"drop-evidence", []string{"server-crash"}},
	}
	for _, c := range cases {
		t.Run(c.sabotage, func(t *testing.T) {
			sab, err := ParseSabotage(c.sabotage)
			if err != nil {
				t.Fatal(err)
			}
			cfg := SmallConfig()
			cfg.Faults, cfg.Sabotage = c.faults, sab
			if c.sabotage == "ignore-limits" {
				cfg.Servers = 60 // more servers per host than the concurrency cap
			}
			want := Sabotages[c.sabotage]
			var hit *Result
			tripped := map[int]int{}
			for seed := uint64(1); seed <= 40 && hit == nil; seed++ {
				r := run(t, seed, cfg)
				for _, v := range r.Violations {
					tripped[v.Invariant]++
					if v.Invariant == want && hit == nil {
						hit = &r
					}
				}
			}
			if hit == nil {
				t.Fatalf("sabotage %s: no seed of 40 tripped invariant %d (%s); tripped: %v", c.sabotage, want, invariantNames[want], tripped)
			}
			t.Logf("seed %d trips invariant %d: %s\nreplay: %s", hit.Seed, want, hit.Violations[0], ReplayCommand(hit.Seed, cfg))
			// The replay command gives the same verdict.
			again := run(t, hit.Seed, cfg)
			if len(again.Violations) == 0 {
				t.Fatalf("seed %d did not replay its violation", hit.Seed)
			}
		})
	}
}
