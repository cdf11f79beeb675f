package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A host that is up again (its service reports, its power is not proven off) is
// never fenced, marked down or evacuated from, whatever its incident had done so far
// (DESIGN.md invariant 4), and its incident ends. The walk covers every step
// state the incident may hold.
func TestPlanNeverActsOnAHostThatIsUpAgain(t *testing.T) {
	bools := []bool{false, true}
	cases := 0
	for _, forced := range bools {
		for _, canFence := range bools {
			for _, sfo := range bools {
				for _, power := range []model.Power{model.PowerUnknown, model.PowerOn} {
					for _, fence := range []model.StepState{"", model.StepIssued, model.StepSucceeded, model.StepFailed, model.StepSkipped} {
						for _, md := range []model.StepState{"", model.StepIssued, model.StepSucceeded, model.StepFailed} {
							for _, elapsed := range []time.Duration{time.Second, 61 * time.Second} {
								c := hostRecovery{forced, canFence, sfo, power, fence, md, elapsed}
								if fence == "" && md == "" {
									continue // nothing done yet: "host back before any action" in TestHostFailure
								}
								cases++
								in := c.input()
								up := model.Subject{Kind: model.KindHost, ID: "h0"}
								h := in.Hosts["h0"]
								h.Service = model.ServiceUp
								in.Hosts["h0"] = h
								in.Verdicts[up] = model.Verdict{Subject: up, Host: string(model.HostUp), Rule: "host-service-up", Evidence: []string{"compute service up"}, Since: in.Now}
								out := Plan(in)
								for _, st := range out.Steps {
									if st.State != model.StepSkipped && (st.Action == model.ActFence || st.Action == model.ActMarkDown || st.Action == model.ActEvacuate) {
										t.Errorf("%s, host up again: %s planned (%s)", c, st.Action, st.Rule)
									}
								}
								// Resolved, or escalated when its power came back after a fence
								// (an operator decides then); either way the incident is over.
								if got := changes(out); got != "resolved" && got != "escalated" {
									t.Errorf("%s, host up again: changes %q, want resolved or escalated", c, got)
								}
							}
						}
					}
				}
			}
		}
	}
	if cases == 0 {
		t.Fatal("no case walked")
	}
}

// A host recovery that cannot finish (no host has room for its servers) is escalated
// once the policy's deadline has passed, with that reason (invariant 5).
func TestHostIncidentPastItsDeadlineEscalates(t *testing.T) {
	f := newFixture(2)
	h2 := f.in.Hosts["h2"]
	h2.Maintenance = true // the only other host takes nothing
	f.in.Hosts["h2"] = h2
	f.hostDown("h1")
	if got := steps(f.run(model.StepIssued)); got != "fence" {
		t.Fatalf("steps %q, want fence", got)
	}
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
	if got := steps(f.run(model.StepIssued)); got != "mark-down" {
		t.Fatalf("steps %q, want mark-down", got)
	}
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff, ForcedDown: true}
	out := f.run(model.StepIssued)
	if steps(out) != "" || f.in.Open[0].State != model.IncidentWaiting || !strings.Contains(f.in.Open[0].Reason, "no up host has room") {
		t.Fatalf("no room: steps %q, incident %s (%s), want waiting for room", steps(out), f.in.Open[0].State, f.in.Open[0].Reason)
	}
	f.later(5 * time.Minute)
	if out := f.run(model.StepIssued); changes(out) != "" && changes(out) != "waiting" {
		t.Fatalf("within the deadline: changes %v", out.Changes)
	}
	f.later(6 * time.Minute)
	out = f.run(model.StepIssued)
	if changes(out) != "escalated" || !strings.Contains(out.Changes[0].Reason, "deadline") {
		t.Fatalf("past the deadline: changes %+v, want escalated naming the deadline", out.Changes)
	}
}

// A fence whose answer was lost stays unsettled while its BMC is silent (only the
// BMC can say whether it was taken). The incident still escalates at its deadline,
// saying the host may be off, and its reason does not grow round after round (it
// waited for ever, its reason repeating itself, in the fabric test with the BMC
// stopped).
func TestUnsettledFenceOfASilentBMCEscalatesAtTheDeadline(t *testing.T) {
	f := newFixture(2)
	f.hostDown("h1")
	if got := steps(f.run(model.StepIntent)); got != "fence" {
		t.Fatalf("steps %q, want fence", got)
	}
	var last string
	for i := range 4 {
		f.later(6 * time.Minute)
		f.run(model.StepIntent)
		in := f.in.Open[0]
		if i == 0 {
			last = in.Reason
			continue
		}
		if in.State != model.IncidentEscalated {
			t.Fatalf("round %d past the deadline: %s (%s), want escalated", i, in.State, in.Reason)
		}
		if !strings.Contains(in.Reason, "deadline") || !strings.Contains(in.Reason, "whether fence h1 was taken is not known") {
			t.Fatalf("reason %q, want the deadline and the unknown fence", in.Reason)
		}
		if len(in.Reason) > len(last)+500 && last != "" {
			t.Fatalf("reason grew from %d to %d bytes", len(last), len(in.Reason))
		}
		last = in.Reason
	}
}
