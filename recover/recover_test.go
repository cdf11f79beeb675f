package recover_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// journal is an in-memory Journal: it keeps the latest state of each step.
type journal struct {
	steps  map[int64]model.Step
	events []model.Event
	next   int64
}

func (j *journal) AddStep(_ context.Context, _ int64, st *model.Step) error {
	j.next++
	st.ID = j.next
	j.steps[st.ID] = *st
	return nil
}
func (j *journal) UpdateStep(_ context.Context, _ int64, st model.Step) error {
	j.steps[st.ID] = st
	return nil
}
func (j *journal) AppendEvents(_ context.Context, evs ...model.Event) error {
	j.events = append(j.events, evs...)
	return nil
}

func setup(t *testing.T) (*sim.Cloud, *recover.Executor, *journal, *time.Time, string) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := sim.New(sim.DefaultConfig(), func() time.Time { return now })
	c.AddHost("h1", "a", 5)
	c.AddHost("h2", "a", 5)
	id, err := c.CreateServer("vm", "h1")
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{steps: map[int64]model.Step{}}
	x := &recover.Executor{Compute: c, Fencer: c, Journal: j, Epoch: 1, Now: func() time.Time { return now }}
	return c, x, j, &now, id
}

func TestRunJournalsIntentThenOutcome(t *testing.T) {
	c, x, j, _, id := setup(t)
	if err := c.Crash(id); err != nil {
		t.Fatal(err)
	}
	var seen model.StepState
	x.Hook.AfterIntent = func(st model.Step) error { seen = j.steps[st.ID].State; return nil }
	st := &model.Step{Incident: 1, Action: model.ActReboot, Hard: true, Server: id, Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st}); err != nil {
		t.Fatal(err)
	}
	if seen != model.StepIntent {
		t.Fatalf("journal before the action: %q, want intent", seen)
	}
	if got := j.steps[st.ID]; got.State != model.StepIssued || got.Deadline.IsZero() {
		t.Fatalf("journal after the action: %+v", got)
	}
	// A refusal is journaled as a failure that moves the ladder on, not a retry.
	st2 := &model.Step{Incident: 1, Action: model.ActRebuild, Server: id, Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st2}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st2.ID]; got.State != model.StepFailed || got.Retryable || got.Error == "" {
		t.Fatalf("rebuild during a reboot: %+v, want a non-retryable failure with the cloud's reason", got)
	}
	// The cloud refusing for a passing reason (a 5xx before acting would also do) is
	// a failure worth retrying; the cloud not answering at all is an outcome unknown.
	c.FailNext("evacuate", cloud.ErrUnavailable)
	st3 := &model.Step{Incident: 1, Action: model.ActEvacuate, Server: id, Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st3}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st3.ID]; got.State != model.StepIntent || got.Error == "" {
		t.Fatalf("evacuate with no answer: %+v, want still an intent (outcome unknown) with the error noted", got)
	}
}

// A lost answer is "unknown", not "failed": Settle asks the cloud's action log
// and neither repeats an action that was taken nor takes one that was not.
func TestLostAnswerIsSettledByTheCloudsLog(t *testing.T) {
	c, x, j, now, id := setup(t)
	if err := c.Crash(id); err != nil {
		t.Fatal(err)
	}
	// Taken, and then the answer lost (the executor's hook plays the lost answer).
	x.Hook.AfterAction = func(model.Step) error { return recover.ErrCrash }
	st := &model.Step{Incident: 1, Action: model.ActReboot, Hard: true, Server: id, Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st}); err != recover.ErrCrash {
		t.Fatalf("run: %v", err)
	}
	x.Hook = recover.Hook{}
	if got := j.steps[st.ID]; got.Prior != 0 {
		t.Fatalf("prior reboots journaled %d, want 0 (the server was never rebooted)", got.Prior)
	}
	*now = now.Add(time.Second)
	if err := x.Settle(context.Background(), []model.Incident{{ID: 1, Steps: []model.Step{j.steps[st.ID]}}}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st.ID]; got.State != model.StepIssued || c.Calls()["hard-reboot"] != 1 {
		t.Fatalf("settled %+v after %d hard reboots, want issued, one", got, c.Calls()["hard-reboot"])
	}
}

// After a restart, a step left as intent is settled by the cloud's record: taken
// ones are not repeated, and ones never taken are not taken blindly either: they
// go back to the planner (marked skipped), which decides from what it sees now.
func TestSettleAsksTheCloudBeforeAnything(t *testing.T) {
	c, x, j, now, id := setup(t)
	if err := c.Crash(id); err != nil {
		t.Fatal(err)
	}
	// Taken, outcome lost: the crash came after the action.
	taken := &model.Step{Incident: 1, Action: model.ActReboot, Hard: true, Server: id, Timeout: time.Minute, Rule: "r"}
	x.Hook.AfterAction = func(model.Step) error { return recover.ErrCrash }
	if err := x.Run(context.Background(), []*model.Step{taken}); err != recover.ErrCrash {
		t.Fatalf("run: %v", err)
	}
	x.Hook = recover.Hook{}
	*now = now.Add(5 * time.Second)
	open := []model.Incident{{ID: 1, Steps: []model.Step{j.steps[taken.ID]}}}
	if err := x.Settle(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[taken.ID]; got.State != model.StepIssued {
		t.Fatalf("resumed step: %+v, want issued without repeating", got)
	}
	if n := c.Calls()["hard-reboot"]; n != 1 {
		t.Fatalf("hard reboots: %d, want 1 (not repeated)", n)
	}
	// Never taken: the crash came after the intent.
	_ = c.PowerOffBehindBack(id)
	*now = now.Add(time.Minute)
	never := &model.Step{Incident: 1, Action: model.ActRebuild, Server: id, Timeout: time.Minute, Rule: "r"}
	x.Hook.AfterIntent = func(model.Step) error { return recover.ErrCrash }
	_ = x.Run(context.Background(), []*model.Step{never})
	x.Hook = recover.Hook{}
	if c.Calls()["rebuild"] != 0 {
		t.Fatal("the rebuild ran before the crash point")
	}
	open = []model.Incident{{ID: 1, Steps: []model.Step{j.steps[never.ID]}}}
	if err := x.Settle(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[never.ID]; got.State != model.StepSkipped || c.Calls()["rebuild"] != 0 {
		t.Fatalf("settled step %+v, rebuilds %d: want skipped (back to the planner), none taken", got, c.Calls()["rebuild"])
	}
	// A fence left in flight: the BMC already says off, so it is not repeated.
	if err := c.KillHost("h2"); err != nil {
		t.Fatal(err)
	}
	fence := &model.Step{Incident: 2, Action: model.ActFence, Host: "h2", State: model.StepIntent, Started: *now, Timeout: time.Minute, Rule: "r"}
	_ = j.AddStep(context.Background(), 1, fence)
	if err := x.Settle(context.Background(), []model.Incident{{ID: 2, Steps: []model.Step{*fence}}}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[fence.ID]; got.State != model.StepIssued || c.Calls()["bmc-power-off"] != 0 {
		t.Fatalf("fence settled: %+v, power-offs %d: want issued, none sent", got, c.Calls()["bmc-power-off"])
	}
	// A fence left in flight on a host whose BMC says on (it was only isolated, and
	// reports again): not taken now; the planner decides with what it sees.
	fence2 := &model.Step{Incident: 3, Action: model.ActFence, Host: "h1", State: model.StepIntent, Started: *now, Timeout: time.Minute, Rule: "r"}
	_ = j.AddStep(context.Background(), 1, fence2)
	if err := x.Settle(context.Background(), []model.Incident{{ID: 3, Steps: []model.Step{*fence2}}}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[fence2.ID]; got.State != model.StepSkipped || c.Calls()["bmc-power-off"] != 0 || c.HostPower("h1") != model.PowerOn {
		t.Fatalf("fence of a powered host settled: %+v, power-offs %d: want skipped, none sent", got, c.Calls()["bmc-power-off"])
	}
}

// lossy carries an action out and then loses its answer (a timeout on the way back).
type lossy struct {
	*sim.Cloud
	lose map[string]bool
}

func (l lossy) Evacuate(ctx context.Context, id, target string) error {
	if err := l.Cloud.Evacuate(ctx, id, target); err != nil || !l.lose["evacuate"] {
		return err
	}
	return fmt.Errorf("evacuate %s: %w: context deadline exceeded (answer lost)", id, cloud.ErrUnavailable)
}

// Hole 4: an evacuation accepted by the cloud whose answer was lost is "unknown",
// never a failure to retry: settled as taken, and the server is then never reset
// for another evacuation (its last action moved it).
func TestEvacuationWithALostAnswerIsNeverRepeated(t *testing.T) {
	c, x, j, now, id := setup(t)
	x.Compute = lossy{c, map[string]bool{"evacuate": true}}
	if err := c.KillHost("h1"); err != nil {
		t.Fatal(err)
	}
	_ = c.ForceDown(context.Background(), "h1", true)
	st := &model.Step{Incident: 1, Action: model.ActEvacuate, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st.ID]; got.State != model.StepIntent {
		t.Fatalf("evacuation with its answer lost: %+v, want still an intent (unknown)", got)
	}
	*now = now.Add(time.Second)
	if err := x.Settle(context.Background(), []model.Incident{{ID: 1, Steps: []model.Step{j.steps[st.ID]}}}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st.ID]; got.State != model.StepIssued {
		t.Fatalf("settled: %+v, want issued (the action log shows it)", got)
	}
	reset := &model.Step{Incident: 1, Action: model.ActResetState, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{reset}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[reset.ID]; got.State != model.StepFailed || got.Retryable || !strings.Contains(got.Error, "last action is evacuate") {
		t.Fatalf("reset-state of a server being evacuated: %+v, want refused for good", got)
	}
	if n := c.Calls()["reset-state"]; n != 0 {
		t.Fatalf("%d reset-state calls reached the cloud", n)
	}
}
