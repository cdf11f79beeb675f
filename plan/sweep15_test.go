package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Found by the sweep of issue 15's merged branches.

// A drained host whose agent fell silent on every path may have just lost its
// power (Nova's heartbeat is not stale yet): no migration until it is heard again;
// the drain waits, saying why, then migrates (sim seed 590 of issue 15).
func TestDrainWaitsWhileTheAgentIsSilent(t *testing.T) {
	f := drainFixture()
	agent := model.Subject{Kind: model.KindAgent, ID: "h1"}
	f.in.Verdicts[agent] = model.Verdict{Subject: agent, Host: string(model.HostSuspect), Rule: "agent-silent", Since: t0}
	out := f.run(model.StepIssued)
	if got := steps(out); got != "" {
		t.Fatalf("steps %q off a host whose agent is silent, want none", got)
	}
	if inc := f.in.Open[0]; inc.State != model.IncidentWaiting || !strings.Contains(inc.Reason, "agent of host h1 is silent on every path") {
		t.Fatalf("drain %s (%s), want waiting: its agent is silent", inc.State, inc.Reason)
	}
	f.later(2 * time.Second) // the same reason at the next tick: no new change
	if out := f.run(model.StepIssued); changes(out) != "" {
		t.Fatalf("changes %q at the next tick, want none (a stable reason)", changes(out))
	}
	f.in.Verdicts[agent] = model.Verdict{Subject: agent, Host: string(model.HostUp), Rule: "agent-heard", Since: f.in.Now}
	f.later(2 * time.Second)
	if got := steps(f.run(model.StepIssued)); got != "live-migrate,live-migrate" {
		t.Fatalf("agent heard again: steps %q, want two live migrations", got)
	}
}

// A ladder's migration rung needs its source alive too: a host judged up whose BMC
// says off makes it wait.
func TestLiveMigrateRungNeedsALiveSource(t *testing.T) {
	f := newFixture(2)
	pol := model.DefaultPolicy()
	pol.Ladders[model.FaultCrashed] = []model.Action{model.ActLiveMigrate}
	f.in.Policies["default"] = pol
	f.server("a", "h1", model.StatusError)
	v := f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
	v.Fault = model.FaultCrashed
	f.in.Verdicts[v.Subject] = v
	h := f.in.Hosts["h1"]
	h.Power = model.PowerOff
	f.in.Hosts["h1"] = h
	if got := steps(f.run(model.StepIssued)); got != "" {
		t.Fatalf("steps %q off a host whose BMC says off, want none", got)
	}
	if inc := f.in.Open[0]; inc.State != model.IncidentWaiting || !strings.Contains(inc.Reason, "migrate-needs-live-source") {
		t.Fatalf("incident %s (%s), want waiting: migrate-needs-live-source", inc.State, inc.Reason)
	}
}

// A server whose evacuation landed in ERROR on another host left the host with its
// ports down: the host incident stays open (saying why) until it runs ACTIVE there,
// then lifts its ports, then resolves (sim seed 164 of issue 15: it resolved, and
// nobody lifted them once the server's own incident brought it back).
func TestPortsOfAServerThatLandedInErrorGoUpOnceItRuns(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	landed := false
	for i := range 80 {
		f.later(2 * time.Second)
		f.forcedDown(i > 0)
		for _, id := range []string{"a", "b"} {
			if len(f.in.Open) == 0 {
				break
			}
			if st := lastOf(f.in.Open[0].Steps, model.ActEvacuate, id); st != nil && st.State == model.StepIssued && f.in.Servers[id].Host == "h1" {
				if id == "a" { // landed in ERROR: the evacuation is not confirmed
					// (Its own incident is left out: this fixture plans one incident.)
					f.in.Servers[id] = model.Server{ID: id, Host: "h2", Status: model.StatusError}
					delete(f.in.Verdicts, model.Subject{Kind: model.KindServer, ID: id})
					landed = true
				} else {
					f.movedTo(id, "h3")
				}
			}
		}
		f.round()
		if f.in.Open[0].State.Closed() {
			break
		}
	}
	inc := f.in.Open[0]
	if !landed || inc.State.Closed() || succeeded(inc.Steps, model.ActPortsUp, "a") {
		t.Fatalf("a in ERROR on h2: incident %s (%s), want open with a's ports still down", inc.State, inc.Reason)
	}
	if inc.State != model.IncidentWaiting || !strings.Contains(inc.Reason, "fabric-lift: server a left host h1 but is ERROR on h2") {
		t.Fatalf("incident %s (%s), want waiting, naming a's ports", inc.State, inc.Reason)
	}
	f.later(2 * time.Second)
	f.movedTo("a", "h2") // its own incident rebooted it
	if got := steps(f.round()); got != "ports-up" {
		t.Fatalf("a ACTIVE on h2: steps %q, want ports-up; %s %s %+v", got, f.in.Open[0].State, f.in.Open[0].Reason, f.in.Open[0].Steps)
	}
	f.later(2 * time.Second)
	f.round()
	if inc := f.in.Open[0]; inc.State != model.IncidentResolved {
		t.Fatalf("incident %s (%s), want resolved once a's ports are up", inc.State, inc.Reason)
	}
}

// A member of an anti-affinity group whose copy runs where Nova does not place it
// (its host's agent reports it there: a live migration switched over before its
// source died) takes that host all the same, and Nova's scheduler cannot know it:
// Vigil names the target of the other member's evacuation (sim seed 143 of issue
// 15: the scheduler put it beside that copy).
func TestAntiAffinityCountsACopyNovaDoesNotPlace(t *testing.T) {
	f := placementFixture(4, 8, 1, 8)
	f.member("x", "h1", 1, 3)
	f.member("y", "h3", 1, 3)
	y := f.in.Servers["y"]
	y.Status = model.StatusError
	f.in.Servers["y"] = y
	f.in.Running = map[string][]string{"y": {"h2"}}
	f.in.ServerGroups = []model.ServerGroup{{ID: "g1", Name: "db", Policy: model.GroupAntiAffinity, Members: []string{"x", "y"}}}
	out := f.fenceAndMarkDown(t)
	if got := strings.Join(evacuated(out), ","); got != "x→h4" {
		t.Fatalf("evacuated %q, want x named to h4 (h2 runs y's copy, h3 is y's in Nova)", got)
	}
}
