package sim

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
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
	for _, seed := range []uint64{3, 61, 178} { // 3: a world with agents
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
		// small and default are issue 13's worlds (its fault kinds and settings, in
		// which these seeds were found: they replay as they did); small14 and
		// default14 have every kind and setting, host agents included.
		cfg := SmallConfig()
		switch fields[1] {
		case "small":
			cfg.Faults, cfg.Settings = Issue13Faults, Issue13Settings
		case "default":
			cfg = DefaultConfig()
			cfg.Faults, cfg.Settings = Issue13Faults, Issue13Settings
		case "default14":
			cfg = DefaultConfig()
		case "classic": // the world these seeds were found in: its fault kinds, no settings
			cfg.Faults, cfg.Settings = ClassicFaults, []string{}
		case "replicas2", "replicas3": // issue 16's replica modes (replicaConfig)
			cfg = replicaConfig(int(fields[1][len(fields[1])-1] - '0'))
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

// A fixed sweep on every go test: small worlds, issue 13's fault kinds and settings
// (issue 14's are swept by TestAgentSweep).
func TestSweep(t *testing.T) {
	n := uint64(400)
	if testing.Short() || raceEnabled {
		n = 60 // the race detector makes each seed ten times slower; CI sweeps without it
	}
	cfg := SmallConfig()
	cfg.Faults, cfg.Settings = Issue13Faults, Issue13Settings
	res := Sweep(context.Background(), 1000, 1000+n-1, cfg, 0)
	t.Logf("%d seeds in %s (%.0f seeds/min); %+v", res.Seeds, res.Elapsed.Round(1e6), res.SeedsPerMinute(), res.Stats)
	for _, err := range res.Errors {
		t.Error(err)
	}
	if res.Stats.Incidents == 0 || res.Stats.Restarts == 0 || res.Stats.Escalated == 0 {
		t.Fatalf("the sweep exercised too little: %+v", res.Stats)
	}
	for _, kind := range cfg.Faults {
		if k := res.Kinds[kind]; k == nil || k.Faults == 0 {
			t.Errorf("the sweep never drew fault kind %s", kind)
		}
	}
	open := issue13Open(t)
	report := t.Errorf
	if open {
		report = t.Logf
	}
	for _, f := range res.Failed {
		report("seed %d: %v\nreplay: %s", f.Seed, f.Violations[0], ReplayCommand(f.Seed, cfg))
	}
	if open && len(res.Failed) > 0 {
		t.Skipf("issue 13 is open: %d of %d seeds break invariants on the current core (per invariant: %v); see testdata/issue13-seeds.txt",
			len(res.Failed), res.Seeds, res.Invalids)
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
		{"evacuate-before-mark-down", []string{"host-isolation", "host-power-loss"}},
		{"fence-heard-host", []string{"path-loss"}},
	}
	for _, c := range cases {
		t.Run(c.sabotage, func(t *testing.T) {
			sab, edge, err := SplitSabotage(c.sabotage)
			if err != nil {
				t.Fatal(err)
			}
			cfg := SmallConfig()
			cfg.Faults, cfg.Sabotage, cfg.Planted, cfg.Settings = c.faults, sab, edge, []string{}
			if len(edge) > 0 {
				cfg.Settings = []string{"no-bmc", "policies"}
			}
			if c.sabotage == "fence-heard-host" {
				cfg.Settings = []string{"agents"}
			}
			if c.sabotage == "ignore-limits" {
				cfg.Servers = 60 // more servers per host than the concurrency cap
			}
			clean := cfg
			clean.Sabotage, clean.Planted = model.Sabotage{}, nil
			want := Sabotages[c.sabotage]
			var hit *Result
			tripped := map[int]int{}
			has := func(r Result) bool {
				return slices.ContainsFunc(r.Violations, func(v Violation) bool { return v.Invariant == want })
			}
			// A hit is a seed the sabotage makes break its invariant and that holds
			// it without the sabotage: the checker caught the planted bug, not
			// one of the core's own holes.
			for seed := uint64(1); seed <= 40 && hit == nil; seed++ {
				r := run(t, seed, cfg)
				for _, v := range r.Violations {
					tripped[v.Invariant]++
				}
				if has(r) && !has(run(t, seed, clean)) {
					hit = &r
				}
			}
			if hit == nil {
				t.Fatalf("sabotage %s: no seed of 40 tripped invariant %d (%s) that the same seed without it holds; tripped: %v", c.sabotage, want, invariantNames[want], tripped)
			}
			i := slices.IndexFunc(hit.Violations, func(v Violation) bool { return v.Invariant == want })
			t.Logf("seed %d trips invariant %d: %s\nreplay: %s", hit.Seed, want, hit.Violations[i], ReplayCommand(hit.Seed, cfg))
			// The replay command gives the same verdict.
			again := run(t, hit.Seed, cfg)
			if len(again.Violations) == 0 {
				t.Fatalf("seed %d did not replay its violation", hit.Seed)
			}
		})
	}
}

// issue13Open: some hole of issue 13 is still open in the core (a line of
// testdata/issue13-seeds.txt says state=open). While one is, the sweep's violations
// are reported, not failed.
func issue13Open(t *testing.T) bool {
	return slices.ContainsFunc(readIssue13Seeds(t), func(s issue13Seed) bool { return s.open })
}

func readIssue13Seeds(t *testing.T) []issue13Seed {
	t.Helper()
	return readSeedFile(t, "issue13-seeds.txt")
}

type issue13Seed struct {
	line string
	open bool // the core still has the hole: the seed must still show it
	hole int
	seed uint64
	inv  int
	cfg  Config
}

// readSeedFile reads a file of seeds that show holes (testdata/issue13-seeds.txt's
// format).
func readSeedFile(t *testing.T, name string) []issue13Seed {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []issue13Seed
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields, _, _ := strings.Cut(line, "#")
		s := issue13Seed{line: line, cfg: SmallConfig()}
		for _, kv := range strings.Fields(fields) {
			k, v, ok := strings.Cut(kv, "=")
			n, nerr := strconv.Atoi(v)
			switch {
			case !ok:
				t.Fatalf("%s: %q: want key=value, got %q", name, line, kv)
			case k == "state" && (v == "open" || v == "fixed"):
				s.open = v == "open"
			case k == "state":
				t.Fatalf("%s: %q: state: want open or fixed, got %q", name, line, v)
			case k == "faults" && v == "classic":
				s.cfg.Faults = ClassicFaults
			case k == "faults":
				s.cfg.Faults = strings.Split(v, ",")
			case k == "settings" && v == "none":
				s.cfg.Settings = []string{}
			case k == "settings":
				s.cfg.Settings = strings.Split(v, ",")
			case nerr != nil:
				t.Fatalf("%s: %q: %s: want a number, got %q", name, line, k, v)
			case k == "hole":
				s.hole = n
			case k == "seed":
				s.seed = uint64(n)
			case k == "inv":
				s.inv = n
			case k == "hosts":
				s.cfg.Hosts = n
			case k == "servers":
				s.cfg.Servers = n
			case k == "segments":
				s.cfg.Segments = n
			default:
				t.Fatalf("%s: %q: unknown key %q", name, line, k)
			}
		}
		out = append(out, s)
	}
	return out
}

// The seeds that show issue 13's holes: each still breaks its invariant while its
// line says state=open, and holds every invariant once it says state=fixed.
func TestIssue13Seeds(t *testing.T) {
	holes := checkHoleSeeds(t, readIssue13Seeds(t))
	for h := 1; h <= 10; h++ {
		if !holes[h] {
			t.Errorf("issue13-seeds.txt has no seed for hole %d", h)
		}
	}
}

// checkHoleSeeds runs each seed of a holes file: an open hole's seed must still show
// its violation, a fixed one's must hold every invariant. It returns the holes seen.
func checkHoleSeeds(t *testing.T, seeds []issue13Seed) map[int]bool {
	holes := map[int]bool{}
	for _, s := range seeds {
		holes[s.hole] = true
		r := run(t, s.seed, s.cfg)
		replay := ReplayCommand(s.seed, s.cfg)
		if !s.open {
			for _, v := range r.Violations {
				t.Errorf("hole %d, seed %d: %v\nreplay: %s", s.hole, s.seed, v, replay)
			}
			continue
		}
		i := slices.IndexFunc(r.Violations, func(v Violation) bool { return v.Invariant == s.inv })
		if i < 0 {
			t.Errorf("hole %d, seed %d no longer breaks invariant %d (%v): the world stopped producing the hole, or the core closed it (then set state=fixed on its line)\nreplay: %s",
				s.hole, s.seed, s.inv, r.Violations, replay)
			continue
		}
		t.Logf("hole %d: %s\n  %v\n  replay: %s", s.hole, strings.TrimSpace(s.line[strings.Index(s.line, "#")+1:]), r.Violations[i], replay)
	}
	return holes
}
