package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A host that dies in maintenance is not fenced nor evacuated: its incident opens
// and escalates at once, naming its protected servers and how to let Vigil act.
// Once the maintenance ends, the same death is recovered (the escalation "in
// maintenance" does not answer it).
func TestHostDeadInMaintenanceEscalatesThenRecoversWhenItEnds(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	subj := model.Subject{Kind: model.KindHost, ID: "h1"}
	f.in.Verdicts[subj] = model.Verdict{Subject: subj, Host: string(model.HostMaintenance), Rule: model.RuleHostMaintenanceDown,
		Evidence: []string{"an operator put the host in maintenance"}, Since: f.in.Now.Add(-time.Second)}
	out := f.run(model.StepIssued)
	if len(out.Open) != 1 || steps(out) != "" || changes(out) != "escalated" ||
		!strings.Contains(out.Changes[0].Reason, "protected servers a are not recovered") || !strings.Contains(out.Changes[0].Reason, "maintenance off h1") {
		t.Fatalf("opened %d, steps %q, changes %q %+v: want one incident escalated at once, naming server a and the way out", len(out.Open), steps(out), changes(out), out.Changes)
	}
	closed := f.in.Open[0]
	closed.State, closed.Closed = model.IncidentEscalated, f.in.Now
	f.in.Open, f.in.LastClosed[subj] = nil, closed

	f.later(time.Minute) // still in maintenance: answered already
	if out := f.run(model.StepIssued); len(out.Open) != 0 || steps(out) != "" {
		t.Fatalf("still in maintenance: opened %d, steps %q: want nothing new", len(out.Open), steps(out))
	}
	// The operator ends the maintenance: the death (since before the escalation) is
	// Vigil's to recover.
	f.later(time.Minute)
	f.in.Verdicts[subj] = model.Verdict{Subject: subj, Host: "down", Failed: true, Rule: "host-service-down-past-grace", Since: t0.Add(-time.Minute)}
	if out := f.run(model.StepIssued); len(out.Open) != 1 || steps(out) != "fence" {
		t.Fatalf("maintenance ended: opened %d, steps %q: want a new incident that fences", len(out.Open), steps(out))
	}
}
