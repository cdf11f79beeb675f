package recover_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// crashAfterIntent journals a rebuild's intent and dies before taking it.
func crashAfterIntent(t *testing.T, x *recover.Executor, j *journal, id string) model.Step {
	t.Helper()
	st := &model.Step{Incident: 1, Action: model.ActRebuild, Server: id, Timeout: time.Minute, Rule: "r"}
	x.Hook.AfterIntent = func(model.Step) error { return recover.ErrCrash }
	if err := x.Run(context.Background(), []*model.Step{st}); !errors.Is(err, recover.ErrCrash) {
		t.Fatalf("run: %v, want the crash", err)
	}
	x.Hook = recover.Hook{}
	if got := j.steps[st.ID]; got.State != model.StepIntent {
		t.Fatalf("journal after the crash: %+v, want intent", got)
	}
	return j.steps[st.ID]
}

// The cloud's record of an older action of the same kind is not proof that this
// step was taken: only one more than the log held at the intent is. Not taken, it
// is not taken blindly now either: it goes back to the planner.
func TestSettleIgnoresAnOlderActionOfTheSameKind(t *testing.T) {
	c, x, j, now, id := setup(t)
	if err := c.Rebuild(context.Background(), id); err != nil { // an earlier rebuild, long done
		t.Fatal(err)
	}
	*now = now.Add(10 * time.Minute)
	_ = c.PowerOffBehindBack(id)
	st := crashAfterIntent(t, x, j, id)
	before := c.Calls()["rebuild"]
	*now = now.Add(5 * time.Second)
	if err := x.Settle(context.Background(), []model.Incident{{ID: 1, Steps: []model.Step{st}}}); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls()["rebuild"] - before; n != 0 {
		t.Fatalf("rebuilds on settle: %d, want none (settling takes nothing)", n)
	}
	if got := j.steps[st.ID]; got.State != model.StepSkipped {
		t.Fatalf("settled step %+v, want skipped: the old rebuild is not this step's", got)
	}
}

// A settle that cannot ask the cloud does not guess: it returns the error, takes
// nothing and leaves the intent for the next attempt.
func TestSettleWithoutAnAnswerTakesNothing(t *testing.T) {
	c, x, j, now, id := setup(t)
	_ = c.PowerOffBehindBack(id)
	st := crashAfterIntent(t, x, j, id)
	*now = now.Add(5 * time.Second)
	c.FailNext("actions", cloud.ErrUnavailable)
	err := x.Settle(context.Background(), []model.Incident{{ID: 1, Steps: []model.Step{st}}})
	if err == nil {
		t.Fatal("settle succeeded without the cloud's record of actions")
	}
	if n := c.Calls()["rebuild"]; n != 0 {
		t.Fatalf("rebuilds: %d, want none while the cloud cannot say whether it was taken", n)
	}
	if got := j.steps[st.ID]; got.State != model.StepIntent {
		t.Fatalf("journal: %+v, want the intent left as it was", got)
	}
}
