package sim

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// SweepResult sums up many seeds.
type SweepResult struct {
	Seeds    int
	Failed   []Result // failing seeds, with their logs
	Errors   []error
	Elapsed  time.Duration
	Stats    Stats
	Checked  int         // invariant checks that ran (ticks)
	Invalids map[int]int // violations per invariant
	// InvalidSeeds: seeds that broke each invariant.
	InvalidSeeds map[int]int
	// Kinds sums up, per fault kind and per world setting, how often it ran and in
	// how many seeds with violations.
	Kinds map[string]*KindStats
	// Detect: the detection times of real host deaths (power loss to Vigil's first
	// incident on the host), in worlds with host agents and without.
	Detect DetectStats
}

// DetectStats are detection times of real host deaths, by world.
type DetectStats struct {
	Agents, Plain []time.Duration
}

// Percentiles returns the p50, p99 and max of ds (zeros when empty).
func Percentiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(ds))
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.99), s[len(s)-1]
}

// KindStats is one fault kind's (or world setting's) share of a sweep.
type KindStats struct {
	Faults int // faults of this kind begun (settings: seeds that drew it)
	Seeds  int // seeds that had it
	Failed int // of those, seeds with violations
	// Invariants: per invariant, seeds that had it and violated that invariant.
	Invariants map[int]int
}

func (s *SweepResult) addKinds(r Result) {
	bump := func(name string, n int) {
		k := s.Kinds[name]
		if k == nil {
			k = &KindStats{Invariants: map[int]int{}}
			s.Kinds[name] = k
		}
		k.Faults += n
		k.Seeds++
		if len(r.Violations) > 0 {
			k.Failed++
			seen := map[int]bool{}
			for _, v := range r.Violations {
				if !seen[v.Invariant] {
					seen[v.Invariant] = true
					k.Invariants[v.Invariant]++
				}
			}
		}
	}
	for name, n := range r.Kinds {
		bump(name, n)
	}
	for _, name := range r.Settings {
		if i := strings.IndexByte(name, '('); i > 0 {
			name = name[:i]
		}
		bump("setting "+name, 1)
	}
}

// SeedsPerMinute is the sweep's speed.
func (s SweepResult) SeedsPerMinute() float64 {
	return float64(s.Seeds) / s.Elapsed.Minutes()
}

// Sweep runs seeds from..to (inclusive) on workers goroutines (0: one per CPU). When
// ctx ends it stops starting seeds and reports those that ran.
func Sweep(ctx context.Context, from, to uint64, cfg Config, workers int) SweepResult {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	seeds := make(chan uint64)
	var mu sync.Mutex
	res := SweepResult{Invalids: map[int]int{}, InvalidSeeds: map[int]int{}, Kinds: map[string]*KindStats{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				r, err := Run(seed, cfg)
				mu.Lock()
				res.Seeds++
				res.Stats.add(r.Stats)
				res.addKinds(r)
				if r.Agents {
					res.Detect.Agents = append(res.Detect.Agents, r.Detect...)
				} else {
					res.Detect.Plain = append(res.Detect.Plain, r.Detect...)
				}
				if err != nil {
					res.Errors = append(res.Errors, err)
				}
				if len(r.Violations) > 0 {
					res.Failed = append(res.Failed, r)
					seen := map[int]bool{}
					for _, v := range r.Violations {
						res.Invalids[v.Invariant]++
						if !seen[v.Invariant] {
							seen[v.Invariant] = true
							res.InvalidSeeds[v.Invariant]++
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for s := from; s <= to; s++ {
		select {
		case seeds <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(seeds)
	wg.Wait()
	sort.Slice(res.Failed, func(i, j int) bool { return res.Failed[i].Seed < res.Failed[j].Seed })
	res.Elapsed = time.Since(start)
	return res
}

func (s *Stats) add(o Stats) {
	s.Faults += o.Faults
	s.Takeovers += o.Takeovers
	s.Incidents += o.Incidents
	s.Resolved += o.Resolved
	s.Escalated += o.Escalated
	s.Restarts += o.Restarts
	s.Ticks += o.Ticks
	s.Signals += o.Signals
}

// ReplayCommand is the command that replays one seed of cfg.
func ReplayCommand(seed uint64, cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vigil sim --seed %d --hosts %d --servers %d --segments %d --until %s --settle %s",
		seed, cfg.Hosts, cfg.Servers, cfg.Segments, cfg.Until, cfg.Settle)
	if len(cfg.Faults) > 0 {
		fmt.Fprintf(&b, " --faults %s", strings.Join(cfg.Faults, ","))
	}
	if cfg.Settings != nil {
		fmt.Fprintf(&b, " --settings %s", cmp.Or(strings.Join(cfg.Settings, ","), "none"))
	}
	if cfg.Replicas > 1 {
		fmt.Fprintf(&b, " --replicas %d", cfg.Replicas)
		if cfg.ShardPerSegment {
			b.WriteString(" --shards per-segment")
		}
	}
	if cfg.DryRun {
		b.WriteString(" --dry-run")
	}
	if s := SabotageFlags(cfg); s != "" {
		fmt.Fprintf(&b, " --sabotage %s", s)
	}
	return b.String()
}
