package recover_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// A fabric step succeeds only on what the fabric reads back: the server's ports
// admin down, its attachment to the old host gone; ports-up lifts it.
func TestFabricStepsAreConfirmedByReadingBack(t *testing.T) {
	c, x, j, _, id := setup(t)
	x.Fabric = c
	ctx := context.Background()
	down := &model.Step{Incident: 1, Action: model.ActPortsDown, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	cut := &model.Step{Incident: 1, Action: model.ActDetachVols, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(ctx, []*model.Step{down, cut}); err != nil {
		t.Fatal(err)
	}
	f, _ := c.FabricState(ctx, id)
	if got := j.steps[down.ID]; got.State != model.StepSucceeded || !f.PortsDown() {
		t.Fatalf("ports-down journaled %s, ports %+v", got.State, f.Ports)
	}
	if got := j.steps[cut.ID]; got.State != model.StepSucceeded || len(f.AttachedTo("h1")) != 0 {
		t.Fatalf("volumes-cut journaled %s, attachments %+v", got.State, f.Attachments)
	}
	up := &model.Step{Incident: 1, Action: model.ActPortsUp, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(ctx, []*model.Step{up}); err != nil {
		t.Fatal(err)
	}
	if f, _ = c.FabricState(ctx, id); j.steps[up.ID].State != model.StepSucceeded || !f.PortsUp() {
		t.Fatalf("ports-up journaled %s, ports %+v", j.steps[up.ID].State, f.Ports)
	}
}

// Without a fabric the step fails for good, saying so (the planner escalates when
// the fabric was the proof, goes on when it was extra safety).
func TestFabricStepWithoutAFabricIsRefused(t *testing.T) {
	_, x, j, _, id := setup(t)
	st := &model.Step{Incident: 1, Action: model.ActPortsDown, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(context.Background(), []*model.Step{st}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[st.ID]; got.State != model.StepFailed || got.Retryable || !strings.Contains(got.Error, "no fabric service") {
		t.Fatalf("journaled %+v", got)
	}
}

// After kill -9 between its intent and the outcome, a fabric step is settled by
// reading the fabric: taken (the ports are down) is succeeded and not repeated;
// not taken goes back to the planner, nothing cut blindly.
func TestFabricStepResumesByReadingTheFabric(t *testing.T) {
	c, x, j, _, id := setup(t)
	x.Fabric = c
	ctx := context.Background()
	for _, taken := range []bool{true, false} {
		st := &model.Step{Incident: 1, Action: model.ActPortsDown, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
		if taken {
			x.Hook.AfterAction = func(model.Step) error { return recover.ErrCrash }
		} else {
			_, _ = c.PortsUp(ctx, id)
			x.Hook.AfterIntent = func(model.Step) error { return recover.ErrCrash }
		}
		if err := x.Run(ctx, []*model.Step{st}); !errors.Is(err, recover.ErrCrash) {
			t.Fatalf("run: %v", err)
		}
		x.Hook = recover.Hook{}
		before := c.Calls()["ports-down"]
		if err := x.Settle(ctx, []model.Incident{{ID: 1, Steps: []model.Step{j.steps[st.ID]}}}); err != nil {
			t.Fatal(err)
		}
		want := model.StepSkipped
		if taken {
			want = model.StepSucceeded
		}
		if got := j.steps[st.ID]; got.State != want || c.Calls()["ports-down"] != before {
			t.Fatalf("taken %v: settled %s (%s), ports-down calls +%d; want %s and none", taken, got.State, got.Error, c.Calls()["ports-down"]-before, want)
		}
	}
}

var _ = cloud.ErrNoFabric

// A server whose ports-down got no answer (it may have been taken) gets no other
// step of the batch: its volumes-cut is left unjournaled (ID 0) for the planner to
// decide again once the first is settled, never two of its steps in flight.
func TestNoSecondStepOfAServerBehindOneWithItsAnswerLost(t *testing.T) {
	c, x, j, _, id := setup(t)
	x.Fabric = c
	ctx := context.Background()
	c.FailNext("ports-down", errors.Join(cloud.ErrUnavailable, errors.New("injected 503")))
	down := &model.Step{Incident: 1, Action: model.ActPortsDown, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	cut := &model.Step{Incident: 1, Action: model.ActDetachVols, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"}
	if err := x.Run(ctx, []*model.Step{down, cut}); err != nil {
		t.Fatal(err)
	}
	if got := j.steps[down.ID]; got.State != model.StepIntent {
		t.Fatalf("ports-down journaled %s (%s), want intent: its outcome is unknown", got.State, got.Error)
	}
	f, _ := c.FabricState(ctx, id)
	if cut.ID != 0 || len(f.AttachedTo("h1")) == 0 {
		t.Fatalf("volumes-cut journaled as %d (%s), attachments %+v: want it left out", cut.ID, cut.State, f.Attachments)
	}
}
