package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A failed server climbs the ladder of its fault (Policy.LadderFor), kept on the
// incident when it opened.
func TestLadderPerFault(t *testing.T) {
	cases := []struct {
		fault string
		want  string // the first rung
	}{
		{model.FaultHung, "hard-reboot"},
		{model.FaultPanicked, "hard-reboot"},
		{model.FaultAppFailed, "reboot"},
		{model.FaultCrashed, "reboot"},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			f := newFixture(2)
			f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}] = model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: "a"},
				Server: "failed", Failed: true, Fault: c.fault, Rule: "server-guest-hung", Since: t0}
			out := f.run(model.StepIssued)
			if len(out.Open) != 1 || out.Open[0].Fault != c.fault {
				t.Fatalf("opened %+v, want one incident with fault %s", out.Open, c.fault)
			}
			if got := steps(out); got != c.want {
				t.Fatalf("first step %q, want %q (policy ladders %v)", got, c.want, model.DefaultPolicy().Ladders)
			}
			if c.fault == model.FaultHung && !strings.Contains(out.Steps[0].Rule, "ladder for hung") {
				t.Fatalf("step rule %q does not name the fault's ladder", out.Steps[0].Rule)
			}
		})
	}
	// The fault survives a restart that lost it (no store column): the verdict's.
	inc := &model.Incident{}
	if got := faultOf(inc, model.Verdict{Failed: true, Fault: model.FaultHung}); got != model.FaultHung {
		t.Fatalf("faultOf without a recorded fault: %q, want the verdict's", got)
	}
}

// Isolated and controller-partitioned hosts: no incident, no fence, no evacuation;
// an incident already open is not advanced.
func TestNoActionOnIsolatedOrPartitionedHosts(t *testing.T) {
	for _, health := range []model.HostHealth{model.HostIsolated, model.HostPartitioned} {
		t.Run(string(health), func(t *testing.T) {
			f := newFixture(3)
			f.hostDown("h1")
			out := f.run(model.StepIssued)
			if steps(out) != "fence" {
				t.Fatalf("setup: %q", steps(out))
			}
			f.later(time.Second)
			f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
				Host: string(health), Rule: "r", Evidence: []string{"heard"}, Since: f.in.Now}
			f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff, ForcedDown: true}
			for range 3 {
				f.later(time.Minute)
				if out := f.run(model.StepIssued); steps(out) != "" {
					t.Fatalf("%s host: steps %q, want none", health, steps(out))
				}
			}
			// And a fresh plan opens nothing.
			g := newFixture(3)
			g.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
				Host: string(health), Rule: "r", Since: t0}
			if out := g.run(model.StepIssued); len(out.Open) != 0 {
				t.Fatalf("%s host: opened %+v", health, out.Open)
			}
		})
	}
}

func TestAgentVerdictsOpenNoIncident(t *testing.T) {
	f := newFixture(2)
	subj := model.Subject{Kind: model.KindAgent, ID: "h1"}
	f.in.Verdicts[subj] = model.Verdict{Subject: subj, Host: "suspect", Failed: true, Rule: "agent-silent", Since: t0}
	if out := f.run(model.StepIssued); len(out.Open) != 0 {
		t.Fatalf("an agent's verdict opened %+v", out.Open)
	}
}

// A server whose old host's agent (heard now) reports it running is not evacuated.
func TestNoEvacuationWhileTheOldHostReportsItRunning(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	f.in.Running = map[string][]string{"a": {"h1"}}
	f.run(model.StepIssued)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
	f.run(model.StepIssued)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff, ForcedDown: true}
	out := f.run(model.StepIssued)
	if strings.Contains(steps(out), "evacuate") {
		t.Fatalf("evacuated a server its old host reports running: %q", steps(out))
	}
	if !strings.Contains(f.in.Open[0].Reason, "copy-still-runs") {
		t.Fatalf("incident reason %q, want copy-still-runs", f.in.Open[0].Reason)
	}
	f.in.Running = nil
	if out := f.run(model.StepIssued); !strings.Contains(steps(out), "evacuate") {
		t.Fatalf("once the report no longer shows it running: %q, want evacuate", steps(out))
	}
}
