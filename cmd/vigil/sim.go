package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/sim"
)

func simCmd() *cobra.Command {
	cfg := sim.DefaultConfig()
	var (
		seed              uint64
		seeds, faults     string
		settings, shards  string
		sabotage          string
		workers, showFail int
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Deterministic simulation: run seeded fault schedules and check every invariant",
		Long: `Runs the real engine (detect, plan, recover, SQLite) against the simulated cloud on
a virtual clock. A seed picks the fault schedule; the same seed replays the same run,
byte for byte. --seed N prints one run's timeline and its invariant report; --seeds A..B
sweeps and prints the failing seeds, each with the command that replays it.

Fault kinds: ` + strings.Join(sim.FaultKinds, ", ") + `.

World settings (each seed draws some of them): ` + strings.Join(sim.WorldSettings, ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if faults != "" {
				cfg.Faults = strings.Split(faults, ",")
				for _, f := range cfg.Faults {
					if !contains(sim.FaultKinds, f) {
						return fmt.Errorf("--faults: unknown fault %q (known: %s)", f, strings.Join(sim.FaultKinds, ", "))
					}
				}
			}
			if cmd.Flags().Changed("settings") {
				cfg.Settings = []string{}
				if settings != "none" {
					cfg.Settings = strings.Split(settings, ",")
				}
				for _, s := range cfg.Settings {
					if !contains(sim.WorldSettings, s) {
						return fmt.Errorf("--settings: unknown setting %q (known: %s, or none)", s, strings.Join(sim.WorldSettings, ", "))
					}
				}
			}
			switch shards {
			case "one":
			case "per-segment":
				cfg.ShardPerSegment = true
			default:
				return fmt.Errorf("--shards: %q is neither one nor per-segment", shards)
			}
			var err error
			if cfg.Sabotage, cfg.Planted, err = sim.SplitSabotage(sabotage); err != nil {
				return err
			}
			if cfg.Until <= cfg.Settle {
				return fmt.Errorf("--until (%s) must be longer than --settle (%s)", cfg.Until, cfg.Settle)
			}
			if seeds == "" {
				cfg.Log = true
				r, err := sim.Run(seed, cfg)
				for _, line := range r.Log {
					fmt.Fprintln(out, line)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "\nseed %d: %d faults, %d incidents (%d resolved, %d escalated), %d restarts of Vigil, %d ticks, %d signal-only reconciles\n",
					seed, r.Stats.Faults, r.Stats.Incidents, r.Stats.Resolved, r.Stats.Escalated, r.Stats.Restarts, r.Stats.Ticks, r.Stats.Signals)
				if cfg.Replicas > 1 {
					fmt.Fprintf(out, "replicas %d: %d shard takeovers\n", cfg.Replicas, r.Stats.Takeovers)
				}
				for _, d := range r.Detect {
					fmt.Fprintf(out, "detection of a host's power loss: %s\n", d.Round(time.Millisecond))
				}
				if cfg.DryRun {
					fmt.Fprintf(out, "dry run: %d cloud mutations\n", r.Mutations)
				}
				fmt.Fprintf(out, "world settings: %s\n", strings.Join(append([]string{"plain"}, r.Settings...)[min(1, len(r.Settings)):], ", "))
				if len(r.Violations) == 0 {
					fmt.Fprintf(out, "invariants: all %d held\n", sim.Invariants)
					return nil
				}
				for _, v := range r.Violations {
					fmt.Fprintln(out, "VIOLATED:", v)
				}
				return fmt.Errorf("%d invariant violations", len(r.Violations))
			}
			from, to, err := parseRange(seeds)
			if err != nil {
				return err
			}
			res := sim.Sweep(cmd.Context(), from, to, cfg, workers)
			if cmd.Context().Err() != nil {
				fmt.Fprintf(out, "interrupted: only %d of %d seeds ran\n", res.Seeds, to-from+1)
			}
			fmt.Fprintf(out, "%d seeds (%d hosts, %d servers, %d segments, %s each) in %s: %.0f seeds/min\n",
				res.Seeds, cfg.Hosts, cfg.Servers, cfg.Segments, cfg.Until, res.Elapsed.Round(time.Millisecond), res.SeedsPerMinute())
			fmt.Fprintf(out, "faults %d, incidents %d (resolved %d, escalated %d), Vigil restarts %d, ticks %d, signal-only reconciles %d\n",
				res.Stats.Faults, res.Stats.Incidents, res.Stats.Resolved, res.Stats.Escalated, res.Stats.Restarts, res.Stats.Ticks, res.Stats.Signals)
			if cfg.Replicas > 1 {
				fmt.Fprintf(out, "replicas %d (shards: %s): %d shard takeovers\n", cfg.Replicas, shards, res.Stats.Takeovers)
			}
			printKinds(out, res)
			printDetect(out, res.Detect)
			for _, e := range res.Errors {
				fmt.Fprintln(out, "ERROR:", e)
			}
			if len(res.Failed) == 0 && len(res.Errors) == 0 {
				fmt.Fprintln(out, "violations: 0")
				return nil
			}
			fmt.Fprintf(out, "violations in %d seeds:\n", len(res.Failed))
			for i, f := range res.Failed {
				if i == showFail {
					fmt.Fprintf(out, "... and %d more\n", len(res.Failed)-i)
					break
				}
				invs := map[int]bool{}
				for _, v := range f.Violations {
					invs[v.Invariant] = true
				}
				var which []string
				for _, i := range slices.Sorted(maps.Keys(invs)) {
					which = append(which, strconv.Itoa(i))
				}
				fmt.Fprintf(out, "  seed %d (invariants %s): %s\n    replay: %s\n", f.Seed, strings.Join(which, ","), f.Violations[0], sim.ReplayCommand(f.Seed, cfg))
			}
			return fmt.Errorf("%d failing seeds", len(res.Failed)+len(res.Errors))
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&seed, "seed", 1, "the seed to run")
	f.StringVar(&seeds, "seeds", "", "sweep a range of seeds, e.g. 1..1000")
	f.StringVar(&faults, "faults", "", "comma-separated fault kinds (default: all)")
	f.StringVar(&settings, "settings", "", "comma-separated world settings a seed may draw, or none (default: all)")
	f.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "hosts in the world")
	f.IntVar(&cfg.Servers, "servers", cfg.Servers, "servers in the world")
	f.IntVar(&cfg.Segments, "segments", cfg.Segments, "failure domains")
	f.DurationVar(&cfg.Until, "until", cfg.Until, "simulated time per seed")
	f.DurationVar(&cfg.Settle, "settle", cfg.Settle, "quiet time at the end, for the liveness check")
	f.StringVar(&sabotage, "sabotage", "", "deliberate bugs, to see the checkers catch them (e.g. skip-fence)")
	f.IntVar(&cfg.Replicas, "replicas", 0, "Vigil replicas sharing the store and the cloud, each with its own leases and clock (0, 1: one Vigil)")
	f.StringVar(&shards, "shards", "one", "with --replicas: one (one shard of every segment) or per-segment")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "every policy dry-run: Vigil journals what it would do and mutates nothing (a mutation is a violation; invariant 6 is replaced by: every open incident says what it would have done or why it waits)")
	f.IntVar(&workers, "workers", 0, "parallel seeds (default: one per CPU)")
	f.IntVar(&showFail, "show", 20, "failing seeds to print")
	return cmd
}

// printKinds prints, per fault kind and world setting, how often it ran and how many
// of the seeds that had it broke an invariant (and which).
func printKinds(out io.Writer, res sim.SweepResult) {
	if len(res.Kinds) == 0 {
		return
	}
	fmt.Fprintf(out, "%-28s %7s %6s %7s  %s\n", "fault kind / setting", "faults", "seeds", "failed", "seeds per violated invariant")
	for _, name := range slices.Sorted(maps.Keys(res.Kinds)) {
		k := res.Kinds[name]
		var inv []string
		for _, i := range slices.Sorted(maps.Keys(k.Invariants)) {
			inv = append(inv, fmt.Sprintf("%d:%d", i, k.Invariants[i]))
		}
		fmt.Fprintf(out, "%-28s %7d %6d %7d  %s\n", name, k.Faults, k.Seeds, k.Failed, strings.Join(inv, " "))
	}
	var inv []string
	for _, i := range slices.Sorted(maps.Keys(res.Invalids)) {
		inv = append(inv, fmt.Sprintf("%d:%d in %d seeds", i, res.Invalids[i], res.InvalidSeeds[i]))
	}
	if len(inv) > 0 {
		fmt.Fprintf(out, "violations per invariant: %s\n", strings.Join(inv, ", "))
	}
}

// printDetect prints the detection times of real host deaths (power loss to Vigil's
// first incident on the host), over all worlds and split by agents.
func printDetect(out io.Writer, d sim.DetectStats) {
	all := append(slices.Clone(d.Agents), d.Plain...)
	if len(all) == 0 {
		return
	}
	line := func(name string, ds []time.Duration) {
		p50, p99, mx := sim.Percentiles(ds)
		fmt.Fprintf(out, "  %-16s %5d deaths  p50 %-8s p99 %-8s max %s\n", name, len(ds), p50.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
	fmt.Fprintln(out, "detection time of a host's power loss (to its first incident):")
	line("all worlds", all)
	line("with agents", d.Agents)
	line("without agents", d.Plain)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseRange(s string) (uint64, uint64, error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return 0, 0, fmt.Errorf("--seeds: want A..B, got %q", s)
	}
	from, err1 := strconv.ParseUint(a, 10, 64)
	to, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || to < from {
		return 0, 0, fmt.Errorf("--seeds: want A..B with A <= B, got %q", s)
	}
	return from, to, nil
}
