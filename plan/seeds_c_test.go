package plan

import (
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
)

// Seed 2930: a host incident that waits on a server in RESIZE/resize_prep (its cold
// migration may finish elsewhere) is escalated at its policy's deadline, naming the
// wait, and never evacuates that server. (The seed failed because the run ended
// before the patient policy's deadline, not because the planner missed it.)
func TestHostIncidentWaitingOnAResizeEscalatesAtItsDeadline(t *testing.T) {
	in := fencedAndMarked()
	in.Servers["v1"] = model.Server{ID: "v1", Host: "h0", Status: model.StatusResize, TaskState: "resize_prep"}
	in.Servers["v0"] = model.Server{ID: "v0", Host: "h1", Status: model.StatusActive} // already moved
	out := Plan(in)
	if got := evacuations(out); len(got) != 0 {
		t.Fatalf("within the deadline: evacuations %v, want none (v1's resize may finish elsewhere)", got)
	}
	if len(out.Changes) != 1 || out.Changes[0].State != model.IncidentWaiting || !strings.Contains(out.Changes[0].Reason, "resize_prep") {
		t.Fatalf("within the deadline: changes %+v, want waiting on v1's resize", out.Changes)
	}
	in.Open[0].State, in.Open[0].Reason = out.Changes[0].State, out.Changes[0].Reason
	in.Now = in.Open[0].Opened.Add(in.Policies["default"].Deadline)
	out = Plan(in)
	if got := evacuations(out); len(got) != 0 {
		t.Fatalf("at the deadline: evacuations %v, want none", got)
	}
	if len(out.Changes) != 1 || out.Changes[0].State != model.IncidentEscalated || !strings.Contains(out.Changes[0].Reason, "deadline") {
		t.Fatalf("at the deadline: changes %+v, want escalated naming the deadline", out.Changes)
	}
}
