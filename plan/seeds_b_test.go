package plan

import (
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
)

// fencedAndMarked is host h0 fenced (BMC off) and forced down by Vigil, its two
// protected servers v0 (ACTIVE) and v1 (ERROR) still on it: the point where the
// planner evacuates.
func fencedAndMarked() Input {
	c := hostRecovery{forcedDown: true, canFence: true, power: model.PowerOff,
		fence: model.StepSucceeded, markDown: model.StepSucceeded, elapsed: 2e9}
	return c.input()
}

func evacuations(out Output) []string {
	var ids []string
	for _, st := range out.Steps {
		if st.Action == model.ActEvacuate && st.State != model.StepSkipped {
			ids = append(ids, st.Server)
		}
	}
	return ids
}

// Seeds 363, 415, 450: a notification (the migrating server's task ended, because
// its host's compute started again) made Vigil plan evacuations from host facts as
// old as the last poll: the host had been powered on since. No fence, force-down or
// evacuation on a plan whose hosts were not read with it (rule host-facts-fresh).
func TestNoHostStepOnANotification(t *testing.T) {
	in := fencedAndMarked()
	if got := evacuations(Plan(in)); len(got) != 2 {
		t.Fatalf("on a poll: evacuations %v, want v0 and v1 (the fixture must reach them)", got)
	}
	in.HostsStale = true
	if out := Plan(in); len(out.Steps) != 0 {
		t.Fatalf("on a notification: steps %+v, want none until the next poll", out.Steps)
	}
}

// Seed 450: a server whose migration was interrupted (its copy may run on the
// destination) is never evacuated from a host that fails later: the fence of that
// host does not reach the destination. The host's incident moves the others, then
// escalates naming it.
func TestHostIncidentNeverEvacuatesAnInterruptedMigration(t *testing.T) {
	in := fencedAndMarked()
	v1 := model.Subject{Kind: model.KindServer, ID: "v1"}
	in.Verdicts[v1] = model.Verdict{Subject: v1, Server: string(model.ServerFailed), Failed: true,
		Rule: model.RuleServerMigrationInterrupted, Evidence: []string{"last seen MIGRATING"}, Since: t0}
	out := Plan(in)
	if got := evacuations(out); len(got) != 1 || got[0] != "v0" {
		t.Fatalf("evacuations %v, want only v0", got)
	}
	// v0 moved: the incident must not resolve as if all were answered.
	in.Servers["v0"] = model.Server{ID: "v0", Host: "h1", Status: model.StatusActive}
	out = Plan(in)
	if got := evacuations(out); len(got) != 0 {
		t.Fatalf("after v0 moved: evacuations %v, want none", got)
	}
	if len(out.Changes) != 1 || out.Changes[0].State != model.IncidentEscalated || !strings.Contains(out.Changes[0].Reason, "v1") {
		t.Fatalf("after v0 moved: changes %+v, want an escalation naming v1", out.Changes)
	}
}
