package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// Scenarios of issue 14 on the engine: host agents' heartbeats (two paths each)
// come in through Config.Agents, Signal reconciles on them between polls.

// beats is an AgentSource the test feeds: every host's agent beats on the paths
// that are up, at each call of pulse.
type beats struct {
	queue []model.AgentBeat
	seq   map[string]uint64
	// silent: hosts whose agent says nothing; cut: host/path pairs that are cut.
	silent map[string]bool
	cut    map[string]bool
}

func (b *beats) Drain() []model.AgentBeat {
	out := b.queue
	b.queue = nil
	return out
}

func (b *beats) pulse(now time.Time, hosts []string, interval time.Duration) {
	for _, h := range hosts {
		if b.silent[h] {
			continue
		}
		for _, p := range []string{model.PathManagement, model.PathStorage} {
			if b.cut[h+"/"+p] {
				continue
			}
			b.seq[h+"/"+p]++
			b.queue = append(b.queue, model.AgentBeat{Host: h, Path: p, Boot: "boot-" + h, Seq: b.seq[h+"/"+p],
				Sent: now, At: now, Interval: interval})
		}
	}
}

// agentWorld is an engine world (see newWorld) whose hosts have agents, on a cloud
// whose Nova takes its default 60 s to call a silent compute down.
type agentWorld struct {
	*world
	b        *beats
	hosts    []string
	interval time.Duration
}

func newAgentWorld(t *testing.T, hosts, perHost int) *agentWorld {
	t.Helper()
	w := &world{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := sim.DefaultConfig()
	cfg.ServiceDownTime = 60 * time.Second
	w.cloud = sim.New(cfg, w.clock)
	aw := &agentWorld{world: w, b: &beats{seq: map[string]uint64{}, silent: map[string]bool{}, cut: map[string]bool{}},
		interval: 250 * time.Millisecond}
	for h := 1; h <= hosts; h++ {
		name := fmt.Sprintf("host-%d", h)
		aw.hosts = append(aw.hosts, name)
		w.cloud.AddHost(name, "seg-a", perHost*3)
		for i := 0; i < perHost; i++ {
			id, err := w.cloud.CreateServer(fmt.Sprintf("vm-%d-%d", h, i), name)
			if err != nil {
				t.Fatal(err)
			}
			w.ids = append(w.ids, id)
		}
	}
	w.path = t.TempDir() + "/vigil.db"
	pol := model.DefaultPolicy()
	pol.StepTimeout = 20 * time.Second
	w.cfg = engine.Config{Compute: w.cloud, Fencer: w.cloud, Now: w.clock, ServiceDownTime: 60 * time.Second,
		Policies: map[string]model.Policy{"default": pol}, FullEvery: 10 * time.Second, Agents: aw.b,
		OnEvent: func(e model.Event) { w.events = append(w.events, e) }}
	db, err := sqlite.Open(context.Background(), w.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
	w.cfg.Store = db
	w.newEngine()
	// Ten seconds of history on every path, a poll every 2 s.
	aw.run(10 * time.Second)
	return aw
}

// run advances the clock by d in agent intervals: the agents beat, Vigil reconciles
// on the signals, and polls the cloud every 2 s.
func (aw *agentWorld) run(d time.Duration) {
	aw.t.Helper()
	end := aw.now.Add(d)
	for aw.now.Before(end) {
		aw.now = aw.now.Add(aw.interval)
		aw.b.pulse(aw.now, aw.hosts, aw.interval)
		var err error
		if aw.now.UnixMilli()%2000 == 0 {
			err = aw.eng.Tick(context.Background())
		} else {
			err = aw.eng.Signal(context.Background())
		}
		if err != nil {
			aw.t.Fatalf("reconcile at %s: %v", aw.now.Format("15:04:05.000"), err)
		}
	}
}

// runUntil runs until cond holds, failing after limit.
func (aw *agentWorld) runUntil(limit time.Duration, what string, cond func() bool) time.Duration {
	aw.t.Helper()
	start := aw.now
	for !cond() {
		if aw.now.Sub(start) > limit {
			aw.t.Fatalf("after %s: %s never happened\n%s", limit, what, aw.timeline())
		}
		aw.run(aw.interval)
	}
	return aw.now.Sub(start)
}

func (aw *agentWorld) verdict(kind, id string) model.Verdict {
	for _, h := range aw.eng.Hosts() {
		if kind == model.KindHost && h.Name == id {
			return h.Verdict
		}
	}
	return model.Verdict{}
}

// A host that loses its power (BMC off, its agent silent on every path) is dead
// with proof: its servers are evacuated in seconds, long before Nova calls its
// compute down (60 s) and without waiting out the policy's grace (10 s).
func TestPowerLossProvenByBMCIsRecoveredInSeconds(t *testing.T) {
	aw := newAgentWorld(t, 3, 2)
	aw.cluster("web", aw.ids[0], aw.ids[1])
	aw.run(2 * time.Second)
	if err := aw.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	aw.b.silent["host-1"] = true
	took := aw.runUntil(60*time.Second, "host-1's servers ACTIVE elsewhere", func() bool {
		for _, id := range aw.ids[:2] {
			s := aw.status(id)
			if s.Status != model.StatusActive || s.Host == "host-1" {
				return false
			}
		}
		return true
	})
	in := aw.lastIncident()
	if in.Subject.ID != "host-1" || in.Rule != "host-bmc-off" {
		t.Fatalf("incident %s (%s), want host-1 dead by its BMC (host-bmc-off)\n%s", in.Subject, in.Rule, aw.timeline())
	}
	// Detection (2.5 intervals of silence, then 2 more since the BMC said off) and
	// the sim cloud's action latency (2 s per action): far below Nova's 60 s.
	if took > 20*time.Second {
		t.Fatalf("power loss -> servers ACTIVE elsewhere took %s, want seconds\n%s", took, aw.timeline())
	}
	if c := aw.cloud.Calls(); c["evacuate"] != 2 {
		t.Fatalf("calls %v: want exactly 2 evacuations\n%s", c, aw.timeline())
	}
	t.Logf("power loss -> 2 servers ACTIVE elsewhere in %s of virtual time (Nova's service_down_time 60 s, grace 10 s)", took)
}

// An agent that dies while its host and guests run is not a dead host: its agent is
// suspect, and nothing is fenced or recovered, however long it stays silent.
func TestDeadAgentIsNotADeadHost(t *testing.T) {
	aw := newAgentWorld(t, 3, 2)
	aw.cluster("web", aw.ids[0], aw.ids[1])
	aw.run(2 * time.Second)
	aw.b.silent["host-1"] = true
	aw.run(5 * time.Minute)
	if c := aw.cloud.Calls(); c["bmc-power-off"]+c["evacuate"]+c["force-down"]+c["reboot"]+c["hard-reboot"] != 0 {
		t.Fatalf("acted on a live host whose agent died: %v\n%s", c, aw.timeline())
	}
	if incs, _ := aw.db.Incidents(context.Background(), 10); len(incs) != 0 {
		t.Fatalf("incidents opened for a dead agent: %+v", incs)
	}
	if !strings.Contains(aw.timeline(), "agent/host-1") || !strings.Contains(aw.timeline(), "agent suspect") {
		t.Fatalf("the silent agent was not reported\n%s", aw.timeline())
	}
	if v := aw.verdict(model.KindHost, "host-1"); v.Host != string(model.HostUp) {
		t.Fatalf("host-1's verdict %+v, want up", v)
	}
}

// A host cut off from Nova (its compute down in Nova after 60 s, its BMC on) whose
// agent is still heard on its storage path is isolated: never fenced, its servers
// never evacuated.
func TestIsolatedHostHeardOnStoragePathIsNeverFenced(t *testing.T) {
	aw := newAgentWorld(t, 3, 2)
	aw.cluster("web", aw.ids[0], aw.ids[1])
	aw.run(2 * time.Second)
	if err := aw.cloud.IsolateHost("host-1", true); err != nil {
		t.Fatal(err)
	}
	aw.b.cut["host-1/"+model.PathManagement] = true
	aw.run(5 * time.Minute)
	if c := aw.cloud.Calls(); c["bmc-power-off"]+c["evacuate"]+c["force-down"] != 0 {
		t.Fatalf("acted on an isolated host heard on its storage path: %v\n%s", c, aw.timeline())
	}
	if v := aw.verdict(model.KindHost, "host-1"); v.Host != string(model.HostIsolated) {
		t.Fatalf("host-1's verdict %+v, want isolated\n%s", v, aw.timeline())
	}
	if !strings.Contains(aw.timeline(), "isolated") {
		t.Fatalf("the isolation was not journaled\n%s", aw.timeline())
	}
}
