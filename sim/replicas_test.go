package sim

import (
	"context"
	"strings"
	"testing"
)

// ReplicaConfig2 is the two-replica world of issue 16 (active/standby on one shard);
// ReplicaConfig3 three replicas over six segments, a shard each.
func replicaConfig(n int) Config {
	cfg := SmallConfig()
	cfg.Replicas = n
	if n == 3 {
		cfg.Hosts, cfg.Segments, cfg.ShardPerSegment = 12, 6, true
	}
	return cfg
}

// A short sweep of each replica mode on every go test: every invariant holds with
// replicas paused past their lease (also between a step's intent and its action),
// killed and restarted, and leadership did change hands.
func TestReplicaSweeps(t *testing.T) {
	for _, replicas := range []int{2, 3} {
		n := uint64(20)
		if replicas == 3 {
			n = 10 // three engines on twelve hosts: each seed costs twice as much
		}
		if testing.Short() || raceEnabled {
			n = 2
		}
		cfg := replicaConfig(replicas)
		res := Sweep(context.Background(), 1, n, cfg, 0)
		t.Logf("%d replicas: %d seeds in %s (%.0f seeds/min); %+v", replicas, res.Seeds, res.Elapsed.Round(1e6), res.SeedsPerMinute(), res.Stats)
		for _, err := range res.Errors {
			t.Error(err)
		}
		for _, f := range res.Failed {
			t.Errorf("%d replicas, seed %d: %v\nreplay: %s", replicas, f.Seed, f.Violations[0], ReplayCommand(f.Seed, cfg))
		}
		if res.Stats.Takeovers == 0 || res.Stats.Incidents == 0 {
			t.Errorf("%d replicas: the sweep exercised too little: %+v", replicas, res.Stats)
		}
		if n >= 10 {
			for _, kind := range ReplicaFaults {
				if k := res.Kinds[kind]; k == nil || k.Faults == 0 {
					t.Errorf("%d replicas: the sweep never drew fault kind %s", replicas, kind)
				}
			}
		}
	}
}

// A leader paused between a step's intent and its action, while a standby takes
// its shard over, must not act on waking: its guard refuses, and the new leader
// settles the step. (Seed 4 of the two-replica world pauses in a fence.)
func TestReplicaPausedMidStepDoesNotAct(t *testing.T) {
	cfg := replicaConfig(2)
	cfg.Faults, cfg.Log = []string{"host-power-loss", "replica-pause-mid-step"}, true
	var found bool
	for seed := uint64(1); seed <= 30 && !found; seed++ {
		r := run(t, seed, cfg)
		for _, v := range r.Violations {
			t.Errorf("seed %d: %v\nreplay: %s", seed, v, ReplayCommand(seed, cfg))
		}
		log := strings.Join(r.Log, "\n")
		if !strings.Contains(log, "right after the intent of") {
			continue
		}
		if !strings.Contains(log, "did not renew") {
			continue // no standby could take over meanwhile
		}
		found = true
		if !strings.Contains(log, "not taken: lease of shard") {
			t.Errorf("seed %d: the paused leader woke inside its step after a takeover, and its guard did not refuse the action:\n%s", seed, log)
		}
	}
	if !found {
		t.Fatal("no seed of 30 paused a leader mid-step while a standby took over")
	}
}

// The replica mode is as deterministic as the rest: same seed, same log.
func TestReplicaSameSeedSameLog(t *testing.T) {
	modes := []int{2, 3}
	if testing.Short() || raceEnabled {
		modes = modes[:1] // the three-replica world is the slow one; the sweep runs it too
	}
	for _, n := range modes {
		cfg := replicaConfig(n)
		cfg.Log = true
		a, b := run(t, 4, cfg), run(t, 4, cfg)
		if strings.Join(a.Log, "\n") != strings.Join(b.Log, "\n") {
			t.Fatalf("%d replicas, seed 4: two runs gave different logs", n)
		}
		if !strings.Contains(strings.Join(a.Log, "\n"), "did not renew") {
			t.Errorf("%d replicas, seed 4: no takeover to compare", n)
		}
	}
}
