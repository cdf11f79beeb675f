package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// fencedHostWith: h1 dead, fenced (BMC off), its service forced down by Vigil,
// with server a on it in the given status and task.
func fencedHostWith(status, task string) *fixture {
	f := newFixture(3)
	f.server("a", "h1", status)
	s := f.in.Servers["a"]
	s.TaskState = task
	f.in.Servers["a"] = s
	f.hostDown("h1")
	h := f.in.Hosts["h1"]
	h.Power, h.ForcedDown = model.PowerOff, true
	f.in.Hosts["h1"] = h
	f.in.Open = []model.Incident{{ID: 1, Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, State: model.IncidentOpen,
		Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0,
		Steps: []model.Step{
			{ID: 1, Incident: 1, Seq: 1, Action: model.ActFence, Host: "h1", State: model.StepSucceeded, Rule: "r"},
			{ID: 2, Incident: 1, Seq: 2, Action: model.ActMarkDown, Host: "h1", State: model.StepSucceeded, Rule: "r"},
		}}}
	return f
}

// Hole 4: a server whose live migration was under way when its host died may run on
// the destination already; a resize's conductor may finish it. Never reset and
// evacuate it (a second copy); wait, and escalate at the deadline.
func TestNoResetOrEvacuationOfAMigratingServer(t *testing.T) {
	for _, c := range []struct{ status, task string }{
		{model.StatusMigrating, "migrating"},
		{model.StatusResize, "resize_migrating"},
		{model.StatusVerify, ""},
		{model.StatusActive, "migrating"},
	} {
		f := fencedHostWith(c.status, c.task)
		out := Plan(f.in)
		for _, st := range out.Steps {
			if st.Server == "a" && (st.Action == model.ActResetState || st.Action == model.ActEvacuate) {
				t.Errorf("%s/%q on a fenced host: planned %s, want neither reset-state nor evacuate", c.status, c.task, st.Action)
			}
		}
	}
	// A task that can run only on the fenced host (a reboot) is cleared, then the
	// server is evacuated.
	f := fencedHostWith(model.StatusReboot, "rebooting")
	if out := Plan(f.in); len(out.Steps) != 1 || out.Steps[0].Action != model.ActResetState {
		t.Fatalf("rebooting server on a fenced host: steps %+v, want one reset-state", out.Steps)
	}
}

// Hole 4: the executor refused a reset-state because the server's last action moved
// it (an evacuation whose answer was lost, an operator's migration): the incident
// escalates with that reason rather than trying again.
func TestRefusedResetEscalates(t *testing.T) {
	f := fencedHostWith(model.StatusRebuild, "rebuilding")
	f.in.Open[0].Steps = append(f.in.Open[0].Steps, model.Step{ID: 3, Incident: 1, Seq: 3, Action: model.ActResetState, Server: "a", Host: "h1",
		State: model.StepFailed, Retryable: false, Error: "reset-state a refused: its last action is evacuate", Rule: "r"})
	out := Plan(f.in)
	if len(out.Steps) != 0 {
		t.Fatalf("steps %+v after a refused reset, want none", out.Steps)
	}
	if len(out.Changes) != 1 || out.Changes[0].State != model.IncidentEscalated || !strings.Contains(out.Changes[0].Reason, "last action is evacuate") {
		t.Fatalf("changes %+v, want escalated with the refusal", out.Changes)
	}
}

// Hole 7: the cloud-wide brake, and only hosts that can host count.
func TestBrakes(t *testing.T) {
	lim := model.Limits{MaxConcurrent: 10, BrakeFraction: 0.5, BrakeMinHosts: 3}
	hosts := map[string]model.Host{}
	verdicts := map[model.Subject]model.Verdict{}
	add := func(name, seg string, down, disabled bool) {
		hosts[name] = model.Host{Name: name, Segment: seg, Disabled: disabled}
		v := model.Verdict{Host: string(model.HostUp)}
		if down {
			v = model.Verdict{Host: string(model.HostDown), Failed: true}
		}
		verdicts[model.Subject{Kind: model.KindHost, ID: name}] = v
	}
	// Five segments of two hosts, all down: no segment reaches 3, the cloud does.
	for i := range 10 {
		add("h"+string(rune('a'+i)), "seg"+string(rune('0'+i/2)), true, false)
	}
	b := Brakes(hosts, verdicts, lim)
	if _, ok := b[CloudWide]; !ok || len(b) != 1 {
		t.Fatalf("brakes %v, want only the cloud-wide one", b)
	}
	if r, ok := brakeOn(b, "seg0"); !ok || !strings.Contains(r, "whole cloud") {
		t.Fatalf("seg0 not braked by the cloud-wide brake: %q", r)
	}
	// Disabled hosts do not count: 3 down of 4 that can host, plus 6 disabled up.
	hosts, verdicts = map[string]model.Host{}, map[model.Subject]model.Verdict{}
	for i := range 6 {
		add("d"+string(rune('a'+i)), "s", false, true)
	}
	add("x1", "s", true, false)
	add("x2", "s", true, false)
	add("x3", "s", true, false)
	add("x4", "s", false, false)
	if b := Brakes(hosts, verdicts, lim); b["s"] == "" {
		t.Fatalf("3 of 4 hosts that can host down: brakes %v, want segment s braked", b)
	}
}

// A fence refused for good (wrong password, a BMC that is not the one pinned)
// escalates at once: retrying cannot change the answer.
func TestTerminalFenceRefusalEscalates(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	f.in.Open = []model.Incident{{ID: 1, Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, State: model.IncidentOpen,
		Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0,
		Steps: []model.Step{{ID: 1, Incident: 1, Seq: 1, Action: model.ActFence, Host: "h1", State: model.StepFailed,
			Retryable: false, Error: "power off h1: BMC refuses user vigil", Rule: "r", Finished: t0}}}}
	f.in.Now = t0.Add(time.Minute)
	out := Plan(f.in)
	if len(out.Steps) != 0 || len(out.Changes) != 1 || out.Changes[0].State != model.IncidentEscalated ||
		!strings.Contains(out.Changes[0].Reason, "refuses user vigil") {
		t.Fatalf("after a terminal fence refusal: steps %+v, changes %+v; want escalated with the BMC's reason", out.Steps, out.Changes)
	}
}

// Seeds 268, 323: a server incident superseded by its host's, whose host then came
// back before any action (resolved): the server's failure was not answered by it,
// and gets an incident of its own again.
func TestSupersededByAHostThatCameBackIsNotAnAnswer(t *testing.T) {
	f := newFixture(3)
	f.server("a", "h1", model.StatusError)
	v := f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
	v.Since = t0
	f.in.Verdicts[v.Subject] = v
	f.in.Now = t0.Add(2 * time.Minute)
	f.in.LastClosed[model.Subject{Kind: model.KindServer, ID: "a"}] = model.Incident{ID: 5, Subject: v.Subject,
		State: model.IncidentSuperseded, Closed: t0.Add(10 * time.Second)}
	f.in.LastClosed[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Incident{ID: 6, Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
		State: model.IncidentResolved, Reason: "host came back before any action", Closed: t0.Add(time.Minute)}
	if out := Plan(f.in); len(out.Open) != 1 || out.Open[0].Subject != v.Subject {
		t.Fatalf("opened %+v, want a new incident for server a", out.Open)
	}
	// Had the host's incident escalated, that answered it.
	f.in.LastClosed[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Incident{ID: 6, Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
		State: model.IncidentEscalated, Reason: "no fence proof", Closed: t0.Add(time.Minute)}
	if out := Plan(f.in); len(out.Open) != 0 {
		t.Fatalf("opened %+v after the host's incident escalated, want none", out.Open)
	}
}

// Seed 8697: a host incident closed (resolved: the host was only suspect then) at
// the very instant the failure that follows began is no answer to that failure.
func TestIncidentClosedAsAFailureBeganIsNoAnswerToIt(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	subj := model.Subject{Kind: model.KindHost, ID: "h1"}
	v := f.in.Verdicts[subj]
	v.Since = t0
	f.in.Verdicts[subj] = v
	f.in.Now = t0.Add(10 * time.Second)
	f.in.LastClosed[subj] = model.Incident{ID: 3, Subject: subj, State: model.IncidentResolved,
		Reason: "host came back before any action", Closed: t0}
	if out := Plan(f.in); len(out.Open) != 1 || out.Open[0].Subject != subj {
		t.Fatalf("opened %+v, want a new incident for h1", out.Open)
	}
	// One closed after the failure began (resolved or escalated while it persisted)
	// did answer it.
	f.in.LastClosed[subj] = model.Incident{ID: 3, Subject: subj, State: model.IncidentEscalated, Reason: "r", Closed: t0.Add(time.Second)}
	if out := Plan(f.in); len(out.Open) != 0 {
		t.Fatalf("opened %+v after an escalation during this failure, want none", out.Open)
	}
}

// Seeds 7463, 8174: an incident whose step's outcome is unknown (Vigil crashed after
// the evacuation was accepted, and the cloud's log could not be read yet) is not
// closed, even when its host came back: closed, the journal would never learn that
// the evacuation was taken.
func TestNoCloseWhileAStepIsUnsettled(t *testing.T) {
	f := newFixture(3)
	f.in.Open = []model.Incident{{ID: 1, Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, State: model.IncidentOpen,
		Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0,
		Steps: []model.Step{
			{ID: 1, Incident: 1, Seq: 1, Action: model.ActFence, Host: "h1", State: model.StepSucceeded, Rule: "r"},
			{ID: 2, Incident: 1, Seq: 2, Action: model.ActMarkDown, Host: "h1", State: model.StepSucceeded, Rule: "r"},
			{ID: 3, Incident: 1, Seq: 3, Action: model.ActEvacuate, Server: "a", Host: "h1", State: model.StepIntent, Rule: "r"},
		}}}
	// h1 is up again (newFixture's hosts are up): the incident would resolve.
	out := Plan(f.in)
	for _, c := range out.Changes {
		if c.State.Closed() {
			t.Fatalf("incident closed (%s: %s) with its evacuation's outcome unknown", c.State, c.Reason)
		}
	}
	if len(out.Changes) != 1 || !strings.Contains(out.Changes[0].Reason, "is not known yet") {
		t.Fatalf("changes %+v, want waiting, saying the outcome is not known yet", out.Changes)
	}
}
