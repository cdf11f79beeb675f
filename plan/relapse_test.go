package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A server that fails again soon after a reboot brought it back has relapsed: its
// new incident climbs on from that rung (an app only a rebuild cures is not
// rebooted forever); once the ladder is spent it escalates; a relapse long after,
// or another fault, starts the ladder over. (Sim seeds 41 and 313 of issue 14.)
func TestRelapseClimbsTheLadder(t *testing.T) {
	subj := model.Subject{Kind: model.KindServer, ID: "a"}
	resolvedBy := func(action model.Action, at time.Time, fault string) model.Incident {
		return model.Incident{ID: 7, Subject: subj, State: model.IncidentResolved, Fault: fault, Closed: at,
			Steps: []model.Step{{Action: action, Server: "a", State: model.StepSucceeded, Finished: at}}}
	}
	fail := func(f *fixture, fault string) {
		f.in.Verdicts[subj] = model.Verdict{Subject: subj, Server: "failed", Failed: true, Fault: fault, Rule: "server-app-failed", Since: f.in.Now}
	}
	cases := []struct {
		name     string
		previous model.Incident
		after    time.Duration
		fault    string
		want     string // first step, or "escalated"
	}{
		{"relapse after a reboot", resolvedBy(model.ActReboot, t0, model.FaultAppFailed), time.Minute, model.FaultAppFailed, "hard-reboot"},
		{"relapse after a hard reboot", resolvedBy(model.ActHardReboot, t0, model.FaultAppFailed), time.Minute, model.FaultAppFailed, "rebuild"},
		{"relapse after the last rung", resolvedBy(model.ActRebuild, t0, model.FaultAppFailed), time.Minute, model.FaultAppFailed, "escalated"},
		{"failure long after", resolvedBy(model.ActReboot, t0, model.FaultAppFailed), RelapseWindow + time.Minute, model.FaultAppFailed, "reboot"},
		{"another fault", resolvedBy(model.ActReboot, t0, model.FaultAppFailed), time.Minute, model.FaultCrashed, "reboot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(2)
			f.in.LastClosed[subj] = c.previous
			f.later(c.after)
			fail(f, c.fault)
			out := f.run(model.StepIssued)
			got := steps(out)
			if c.want == "escalated" {
				if changes(out) != "escalated" || !strings.Contains(out.Changes[0].Reason, "failed again") {
					t.Fatalf("steps %q, changes %q %+v: want escalated, saying it failed again", got, changes(out), out.Changes)
				}
				return
			}
			if got != c.want {
				t.Fatalf("first step %q, want %q", got, c.want)
			}
			if c.want != "reboot" && !strings.Contains(out.Steps[0].Rule, "failed again") {
				t.Fatalf("rule %q does not say the server relapsed", out.Steps[0].Rule)
			}
		})
	}
}

// On the agents' signals (facts as old as the last poll) a host proven dead by its
// BMC is fenced and forced down at once; a host down by Nova's word alone waits for
// a listing; the evacuation always waits for one, and a force-down already taken is
// not taken again because the stale listing does not show its flag yet.
func TestDeadByBMCIsFencedOnSignals(t *testing.T) {
	dead := func(f *fixture) {
		f.hostDown("h1")
		f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceUp, Power: model.PowerOff, Capacity: 10}
		f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
			Host: string(model.HostDead), Failed: true, Rule: "host-bmc-off", Since: f.in.Now}
	}
	f := newFixture(3)
	dead(f)
	f.in.HostsStale = true
	if got := steps(f.run(model.StepSucceeded)); got != "" {
		t.Fatalf("dead by its BMC, on a notification (no BMC read with it): steps %q, want none", got)
	}
	f.in.PowerRead = map[string]bool{"h1": true}
	out := f.run(model.StepSucceeded)
	if got := steps(out); got != "fence,mark-down" || out.Steps[0].State != model.StepSucceeded || !strings.Contains(out.Steps[0].Rule, "fence-confirmed-off") {
		t.Fatalf("dead by its BMC, on signals: steps %q (%+v), want the fence confirmed by this BMC read and the force-down at once", got, out.Steps)
	}
	for range 3 {
		f.later(250 * time.Millisecond)
		if got := steps(f.run(model.StepSucceeded)); got != "" {
			t.Fatalf("fenced and forced down, on signals (the listing not yet read): steps %q, want none (no evacuation, no second force-down)", got)
		}
	}
	f.in.HostsStale = false
	h := f.in.Hosts["h1"]
	h.ForcedDown = true
	f.in.Hosts["h1"] = h
	if got := steps(f.run(model.StepIssued)); !strings.HasPrefix(got, "evacuate") {
		t.Fatalf("with a listing showing the force-down: steps %q, want the evacuation", got)
	}

	g := newFixture(3)
	g.hostDown("h1")
	g.in.HostsStale = true
	if got := steps(g.run(model.StepSucceeded)); got != "" {
		t.Fatalf("down by Nova's word, on signals: steps %q, want none until a listing", got)
	}
}

// A host put in maintenance after its recovery began, before its fence held, gets
// no further step: maintenance masks whether it lives (sim seed 6271: it came back
// while Vigil was down, and a retried fence powered it off alive).
func TestMaintenanceMidRecoveryStopsTheFence(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOn, Capacity: 10}
	if got := steps(f.run(model.StepIssued)); got != "fence" {
		t.Fatalf("setup: %q", got)
	}
	f.later(2 * time.Minute) // the fence is never confirmed: its deadline passes
	f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
		Host: string(model.HostMaintenance), Rule: "host-maintenance", Since: f.in.Now}
	out := f.run(model.StepIssued)
	if strings.Contains(steps(out), "fence") || changes(out) != "escalated" || !strings.Contains(out.Changes[0].Reason, "maintenance") {
		t.Fatalf("steps %q, changes %q %+v: want no fence and the incident escalated, naming the maintenance", steps(out), changes(out), out.Changes)
	}
}
