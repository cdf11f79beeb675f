package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// faulted marks server a failed with the given fault (as detect names it).
func (f *fixture) faulted(fault string) {
	f.server("a", "h1", model.StatusError)
	s := model.Subject{Kind: model.KindServer, ID: "a"}
	v := f.in.Verdicts[s]
	v.Fault = fault
	f.in.Verdicts[s] = v
}

// A fault's own max_attempts caps its incidents; another fault keeps the policy's.
func TestFaultRulesMaxAttempts(t *testing.T) {
	pol := model.DefaultPolicy()
	pol.FaultRules = map[string]model.FaultRules{model.FaultCrashed: {MaxAttempts: 1}}
	for _, c := range []struct {
		fault string
		want  int // attempts before the escalation
	}{{model.FaultCrashed, 1}, {model.FaultWatchdog, 3}} {
		t.Run(c.fault, func(t *testing.T) {
			f := newFixture(3)
			f.in.Policies["default"] = pol
			f.faulted(c.fault)
			taken := 0
			for range 10 {
				out := f.run(model.StepFailed)
				taken += len(out.Steps)
				if changes(out) == "escalated" {
					if c.fault == model.FaultCrashed {
						wantChange(t, out, model.IncidentEscalated, "gave up after 1 attempts (policy max_attempts for crashed)")
					}
					break
				}
			}
			// The default ladder has 3 rungs before evacuate (which escalates on a live host).
			if taken != c.want {
				t.Fatalf("%d steps taken for a %s server, want %d", taken, c.fault, c.want)
			}
		})
	}
}

// A fault's own deadline escalates its incidents; another fault keeps the policy's.
func TestFaultRulesDeadline(t *testing.T) {
	pol := model.DefaultPolicy()
	pol.FaultRules = map[string]model.FaultRules{model.FaultHung: {Deadline: 2 * time.Minute}}
	for _, c := range []struct {
		fault     string
		escalated string
	}{{model.FaultHung, "escalated"}, {model.FaultCrashed, ""}} {
		t.Run(c.fault, func(t *testing.T) {
			f := newFixture(3)
			f.in.Policies["default"] = pol
			f.faulted(c.fault)
			f.run(model.StepIssued) // the first rung, never confirmed: it times out after 60s
			f.later(3 * time.Minute)
			out := f.run(model.StepIssued)
			if got := changes(out); got != c.escalated {
				t.Fatalf("a %s incident after 3m: changes %q, want %q (%+v)", c.fault, got, c.escalated, out.Changes)
			}
			if c.escalated != "" {
				wantChange(t, out, model.IncidentEscalated, "deadline 2m0s for hung")
			}
		})
	}
}

// notify-only as a server ladder's rung: reached, the incident escalates at once
// with the reason, and no action is taken, first rung or later.
func TestNotifyOnlyServerRung(t *testing.T) {
	t.Run("first rung", func(t *testing.T) {
		f := newFixture(3)
		pol := model.DefaultPolicy()
		pol.Name = "db"
		pol.Ladders = map[string][]model.Action{model.FaultCrashed: {model.ActNotifyOnly}}
		f.in.Policies["default"] = pol
		f.faulted(model.FaultCrashed)
		out := f.run(model.StepIssued)
		if steps(out) != "" {
			t.Fatalf("steps %q under a notify-only ladder", steps(out))
		}
		wantChange(t, out, model.IncidentEscalated, "notify-only: policy db says fault crashed is answered by an operator: Vigil takes no action")
	})
	t.Run("after a failed reboot", func(t *testing.T) {
		f := newFixture(3)
		pol := model.DefaultPolicy()
		pol.Ladders = map[string][]model.Action{model.FaultCrashed: {model.ActReboot, model.ActNotifyOnly}}
		f.in.Policies["default"] = pol
		f.faulted(model.FaultCrashed)
		if got := steps(f.run(model.StepFailed)); got != "reboot(hard)" {
			t.Fatalf("first round: %q, want the reboot", got)
		}
		out := f.run(model.StepIssued)
		if steps(out) != "" {
			t.Fatalf("steps %q after the reboot failed, want none (notify-only)", steps(out))
		}
		wantChange(t, out, model.IncidentEscalated, "notify-only: policy default says fault crashed is answered by an operator")
	})
}

// A host whose policy answers host-dead with notify-only is neither fenced nor
// evacuated: its incident escalates before the fence, naming its servers.
func TestNotifyOnlyHostDead(t *testing.T) {
	f := newFixture(3)
	pol := model.DefaultPolicy()
	pol.Name = "manual"
	pol.Ladders = map[string][]model.Action{model.FaultHostDead: {model.ActNotifyOnly}}
	f.in.Policies["manual"] = pol
	f.server("b", "h1", model.StatusActive)
	f.in.Clusters = append(f.in.Clusters, model.Cluster{Name: "c2", Members: []string{"b"}, Desired: 1, Policy: "manual"})
	f.hostDown("h1")
	for i := range 3 {
		out := f.run(model.StepIssued)
		if s := steps(out); s != "" {
			t.Fatalf("round %d: steps %q for a host whose policy says notify-only (one of its servers is under it)", i, s)
		}
		if i == 0 {
			wantChange(t, out, model.IncidentEscalated, "notify-only: policy manual says fault host-dead is answered by an operator: Vigil takes no action (host h1: no fence, no evacuation of a, b)")
		}
		f.later(time.Minute)
	}
	// The same host under the default policy alone is fenced.
	g := newFixture(3)
	g.hostDown("h1")
	if got := steps(g.run(model.StepIssued)); got != "fence" {
		t.Fatalf("default policy: steps %q, want fence", got)
	}
}

// host-dead's own limits govern a host incident: its attempts cap the fences, and
// the strictest of the host's policies wins.
func TestHostDeadFaultRules(t *testing.T) {
	pol := model.DefaultPolicy()
	pol.FaultRules = map[string]model.FaultRules{model.FaultHostDead: {MaxAttempts: 1}}
	for _, mixed := range []bool{false, true} {
		f := newFixture(3)
		f.in.Policies["default"] = pol
		if mixed { // the rules are the second policy's (by name): the strictest wins
			f.in.Policies["default"] = model.DefaultPolicy()
			other := pol
			other.Name = "other"
			f.in.Policies["other"] = other
			f.server("b", "h1", model.StatusActive)
			f.in.Clusters = append(f.in.Clusters, model.Cluster{Name: "c2", Members: []string{"b"}, Desired: 1, Policy: "other"})
		}
		f.hostDown("h1")
		fences := 0
		var out Output
		for range 5 {
			out = f.run(model.StepIssued)
			fences += strings.Count(steps(out), "fence")
			if changes(out) == "escalated" {
				break
			}
			f.later(time.Minute)
		}
		if fences != 1 {
			t.Fatalf("mixed=%v: %d fences with host-dead max_attempts 1", mixed, fences)
		}
		wantChange(t, out, model.IncidentEscalated, "after 1 attempts")
	}
	if _, shared := model.DefaultPolicy().FaultRules[model.FaultHostDead]; shared {
		t.Fatal("merging a host's policies wrote into a policy's own map")
	}
}
