package recover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Journal is what the executor needs of the store.
type Journal interface {
	AddStep(ctx context.Context, epoch int64, st *model.Step) error
	UpdateStep(ctx context.Context, epoch int64, st model.Step) error
	AppendEvents(ctx context.Context, evs ...model.Event) error
}

// ErrCrash is returned by a Hook to stop the executor as if the process died there.
var ErrCrash = errors.New("executor stopped by hook (simulated crash)")

// Hook points let tests stop the executor at exact places of the journal protocol.
type Hook struct {
	// AfterIntent runs once a step's intent is journaled, before its action.
	AfterIntent func(model.Step) error
	// AfterAction runs once the driver accepted the action, before its outcome is journaled.
	AfterAction func(model.Step) error
}

// Executor carries out steps for one owner epoch.
type Executor struct {
	Compute cloud.Actor
	Fencer  cloud.Fencer // may be nil: no host can be fenced
	Journal Journal
	Epoch   int64
	Now     func() time.Time
	Hook    Hook
	// Skew tolerated between Vigil's clock and the cloud's when matching a journaled
	// intent to the cloud's record of the action.
	Skew time.Duration
	// Sabotage: deliberate bugs, for the simulation's checker tests only.
	Sabotage model.Sabotage
	// Hosts lists every known host, sorted (FenceWrongHost sabotage only).
	Hosts func() []string
}

// Run journals and takes each step, in order. It stops at the first journal error
// (a stale epoch means another owner took over) and returns it.
func (x *Executor) Run(ctx context.Context, steps []*model.Step) error {
	for _, st := range steps {
		if err := x.run(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func (x *Executor) run(ctx context.Context, st *model.Step) error {
	if st.State == model.StepSkipped {
		st.Finished = x.Now()
		if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
			return fmt.Errorf("journal skipped step: %w", err)
		}
		return x.event(ctx, st, "skipped: "+st.Rule)
	}
	st.State, st.Started = model.StepIntent, x.Now()
	if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
		return fmt.Errorf("journal intent of %s: %w", describe(*st), err)
	}
	if err := x.event(ctx, st, "intent: "+describe(*st)+" — "+st.Rule); err != nil {
		return err
	}
	if x.Hook.AfterIntent != nil {
		if err := x.Hook.AfterIntent(*st); err != nil {
			return err
		}
	}
	return x.act(ctx, st)
}

// act carries out a journaled intent and journals its outcome.
func (x *Executor) act(ctx context.Context, st *model.Step) error {
	err := x.do(ctx, *st)
	if err == nil && x.Hook.AfterAction != nil {
		if herr := x.Hook.AfterAction(*st); herr != nil {
			return herr
		}
	}
	now := x.Now()
	if err != nil {
		st.State, st.Finished, st.Error = model.StepFailed, now, err.Error()
		st.Retryable = retryable(err)
		if jerr := x.Journal.UpdateStep(ctx, x.Epoch, *st); jerr != nil {
			return fmt.Errorf("journal outcome of %s: %w", describe(*st), jerr)
		}
		kind := "refused"
		if st.Retryable {
			kind = "failed (will retry)"
		}
		return x.event(ctx, st, fmt.Sprintf("%s %s: %s", describe(*st), kind, err))
	}
	x.issued(st, now)
	if jerr := x.Journal.UpdateStep(ctx, x.Epoch, *st); jerr != nil {
		return fmt.Errorf("journal outcome of %s: %w", describe(*st), jerr)
	}
	return x.event(ctx, st, "issued: "+describe(*st))
}

func (x *Executor) issued(st *model.Step, at time.Time) {
	st.State, st.Issued, st.Deadline = model.StepIssued, at, at.Add(st.Timeout)
}

// retryable: the cloud or BMC did not answer; the same action may work later. A
// conflict or a terminal error means this action will not work in this state.
func retryable(err error) bool {
	return !cloud.IsTerminal(err) && !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, cloud.ErrNotFound)
}

func (x *Executor) do(ctx context.Context, st model.Step) error {
	switch st.Action {
	case model.ActReboot, model.ActHardReboot:
		return x.Compute.Reboot(ctx, st.Server, st.Hard)
	case model.ActRebuild:
		return x.Compute.Rebuild(ctx, st.Server)
	case model.ActEvacuate:
		return x.Compute.Evacuate(ctx, st.Server, st.Target)
	case model.ActMarkDown:
		return x.Compute.ForceDown(ctx, st.Host, true)
	case model.ActResetState:
		return x.Compute.ResetState(ctx, st.Server)
	case model.ActFence:
		if x.Fencer == nil || !x.Fencer.CanFence(st.Host) {
			return cloud.Terminal(fmt.Errorf("fence %s: no fence device configured", st.Host))
		}
		host := st.Host
		if x.Sabotage.FenceWrongHost && x.Hosts != nil {
			for _, h := range x.Hosts() {
				if h > host {
					host = h
					break
				}
			}
		}
		return x.Fencer.PowerOff(ctx, host)
	}
	return cloud.Terminal(fmt.Errorf("unknown action %q", st.Action))
}

// Resume settles the steps a previous owner journaled as intent but never recorded
// an outcome for: if the cloud shows the action was taken, the step is marked
// issued without repeating it; otherwise it is taken now.
func (x *Executor) Resume(ctx context.Context, open []model.Incident) error {
	for i := range open {
		for j := range open[i].Steps {
			st := &open[i].Steps[j]
			if st.State != model.StepIntent {
				continue
			}
			at, done, err := x.happened(ctx, *st)
			if x.Sabotage.RepeatAfterRestart {
				done = false
			}
			if err != nil {
				return fmt.Errorf("resume %s: cannot tell whether it was taken: %w", describe(*st), err)
			}
			if done {
				x.issued(st, at)
				if err := x.Journal.UpdateStep(ctx, x.Epoch, *st); err != nil {
					return fmt.Errorf("journal resumed %s: %w", describe(*st), err)
				}
				if err := x.event(ctx, st, fmt.Sprintf("resumed after restart: the cloud shows %s was taken at %s; not repeated",
					describe(*st), at.Format(time.RFC3339Nano))); err != nil {
					return err
				}
				continue
			}
			if err := x.event(ctx, st, "resumed after restart: the cloud has no record of "+describe(*st)+"; taking it now"); err != nil {
				return err
			}
			if err := x.act(ctx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// happened asks the cloud whether the step's action was taken after its intent.
func (x *Executor) happened(ctx context.Context, st model.Step) (time.Time, bool, error) {
	var name string
	switch st.Action {
	case model.ActReboot, model.ActHardReboot:
		name = cloud.ActionReboot
	case model.ActRebuild:
		name = cloud.ActionRebuild
	case model.ActEvacuate:
		name = cloud.ActionEvacuate
	case model.ActFence:
		if x.Fencer == nil || !x.Fencer.CanFence(st.Host) {
			return time.Time{}, false, nil
		}
		p, err := x.Fencer.PowerStatus(ctx, st.Host)
		if err != nil {
			return time.Time{}, false, err
		}
		return x.Now(), p == model.PowerOff, nil
	default:
		return time.Time{}, false, nil // idempotent: forcing a service down twice is harmless
	}
	acts, err := x.Compute.Actions(ctx, st.Server)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, a := range acts {
		if a.Action == name && !a.Start.Before(st.Started.Add(-x.Skew)) {
			return a.Start, true, nil
		}
	}
	return time.Time{}, false, nil
}

func (x *Executor) event(ctx context.Context, st *model.Step, msg string) error {
	return x.Journal.AppendEvents(ctx, model.Event{At: x.Now(), Kind: "step", Subject: st.Subject().String(), Incident: st.Incident, Message: msg})
}

func describe(st model.Step) string {
	a := string(st.Action)
	if st.Action == model.ActReboot && st.Hard {
		a = "reboot (hard)"
	}
	switch {
	case st.Action == model.ActEvacuate && st.Target != "":
		return fmt.Sprintf("%s %s from %s to %s", a, st.Server, st.Host, st.Target)
	case st.Action == model.ActEvacuate:
		return fmt.Sprintf("%s %s from %s", a, st.Server, st.Host)
	case st.Server != "":
		return a + " " + st.Server
	default:
		return a + " " + st.Host
	}
}
