package recover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

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
	// AfterAction runs once the driver accepted the action, before its outcome is
	// journaled (and, for the fabric, before it is read back).
	AfterAction func(model.Step) error
}

// Executor carries out steps for one owner epoch.
type Executor struct {
	Compute cloud.Actor
	Fencer  cloud.Fencer // may be nil: no host can be fenced
	// Migrator moves servers off live hosts; nil: migration steps are refused.
	Migrator cloud.Migrator
	Fabric   cloud.Fabric // may be nil: no port or volume can be cut (recover/fabric.go)
	Journal  Journal
	Epoch    int64
	Now      func() time.Time
	Hook     Hook
	// Sabotage: deliberate bugs, for the simulation's checker tests only.
	Sabotage model.Sabotage
	// Hosts lists every known host, sorted (FenceWrongHost sabotage only).
	Hosts func() []string
	// Guard runs right before each action, after its intent is journaled: an error
	// (the owner's lease on the step's shard lapsed or was taken over) stops the
	// executor there, the step left an intent for the next owner to settle. A Vigil
	// that wakes from a pause must not act on a lease it no longer holds.
	Guard func(ctx context.Context, st model.Step) error
	// Limits caps Run's actions in flight at once (MaxParallel, PerHost,
	// PerSegment; zero: model.DefaultLimits') and per minute (ActionsPerMinute;
	// zero: no cap). See Run (parallel.go).
	Limits model.Limits
	// HostOf names the host a server runs on (a step of a server that names no
	// host counts against it); SegmentOf a host's segment. Nil: none known.
	HostOf    func(server string) string
	SegmentOf func(host string) string

	rate     *rate.Limiter // ActionsPerMinute's budget, made at first use
	rateOf   int           // the ActionsPerMinute rate was made for
	rateSaid bool          // the rate limit's event was journaled, and still holds
}

// begin journals a step up to its action: a skipped or confirmed step entirely, a
// step that will act its intent (then the AfterIntent hook and the Guard). It
// reports whether the action is to be taken now (take, then conclude).
// pre holds the server's action log read ahead (Run reads those of a wave at
// once); nil: it is read here.
func (x *Executor) begin(ctx context.Context, st *model.Step, pre *prior) (bool, error) {
	if st.State == model.StepSkipped {
		st.Finished, st.Prior = x.Now(), -1
		if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
			return false, fmt.Errorf("journal skipped step: %w", err)
		}
		return false, x.event(ctx, st, "skipped: "+st.Rule)
	}
	if st.State == model.StepWould {
		// Dry run: what would have been done is journaled, with its rule; no driver
		// is called (not even to read the server's action log).
		now := x.Now()
		st.Started, st.Finished, st.Prior = now, now, -1
		if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
			return false, fmt.Errorf("journal dry-run step: %w", err)
		}
		return false, x.event(ctx, st, fmt.Sprintf("dry-run: would have: %s — %s", describe(*st), st.Rule))
	}
	if st.State == model.StepSucceeded {
		// Confirmed by what was observed (a fence whose power is off already): the
		// plan's conclusion is journaled, no action is taken.
		now := x.Now()
		st.Started, st.Issued, st.Finished, st.Prior = now, now, now, -1
		if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
			return false, fmt.Errorf("journal confirmed step: %w", err)
		}
		return false, x.event(ctx, st, fmt.Sprintf("%s: confirmed, nothing to do: %s", describe(*st), st.Rule))
	}
	// Before the intent, note how many actions of this kind the cloud's log holds
	// for the server: after a restart or a lost answer, a longer log is the proof
	// the step was taken, on the cloud's own record (no clock compared).
	st.Prior = -1
	if name := cloudAction(st.Action); name != "" {
		if pre == nil {
			pre = x.readPrior(ctx, *st)
		}
		acts, err := pre.acts, pre.err
		if err != nil {
			now := x.Now()
			st.State, st.Started, st.Finished = model.StepFailed, now, now
			st.Error, st.Retryable = "not taken: cannot read the server's action log first: "+err.Error(), retryable(err)
			if jerr := x.Journal.AddStep(ctx, x.Epoch, st); jerr != nil {
				return false, fmt.Errorf("journal %s: %w", describe(*st), jerr)
			}
			return false, x.event(ctx, st, fmt.Sprintf("%s not taken: %s", describe(*st), st.Error))
		}
		st.Prior = count(acts, name)
	}
	st.State, st.Started = model.StepIntent, x.Now()
	if err := x.Journal.AddStep(ctx, x.Epoch, st); err != nil {
		return false, fmt.Errorf("journal intent of %s: %w", describe(*st), err)
	}
	if err := x.event(ctx, st, "intent: "+describe(*st)+" — "+st.Rule); err != nil {
		return false, err
	}
	if x.Hook.AfterIntent != nil {
		if err := x.Hook.AfterIntent(*st); err != nil {
			return false, err
		}
	}
	if x.Guard != nil {
		if err := x.Guard(ctx, *st); err != nil {
			return false, fmt.Errorf("%s not taken: %w", describe(*st), err)
		}
	}
	return true, nil
}

// prior is a server's action log as read before a step's intent.
type prior struct {
	acts []model.InstanceAction
	err  error
}

func (x *Executor) readPrior(ctx context.Context, st model.Step) *prior {
	acts, err := x.Compute.Actions(ctx, st.Server)
	return &prior{acts, err}
}

// result is what an action's call (and, for the fabric, its read-back) answered.
type result struct {
	err error
	ids []string // the fabric's ports or attachments acted on
}

// take calls the driver for a journaled intent. It writes nothing: the executor
// may run several at once, and their outcomes are journaled in plan order after.
func (x *Executor) take(ctx context.Context, st model.Step) result {
	if fabricAction(st.Action) {
		ids, err := x.doFabric(ctx, st)
		return result{err: err, ids: ids}
	}
	return result{err: x.do(ctx, st)}
}

// conclude journals the outcome of a taken action. An action whose answer was
// lost (no answer, a timeout) may have been taken: it stays an intent, its outcome
// unknown, until Settle asks the cloud.
func (x *Executor) conclude(ctx context.Context, st *model.Step, r result) error {
	// The hook runs here, in plan order on the executor's goroutine: a test that
	// stops at "the first" action stops at the same one run after run.
	if r.err == nil && x.Hook.AfterAction != nil {
		if err := x.Hook.AfterAction(*st); err != nil {
			return err
		}
	}
	if fabricAction(st.Action) {
		return x.concludeFabric(ctx, st, r)
	}
	err := r.err
	now := x.Now()
	if err != nil && outcomeUnknown(err) {
		st.Error = "no answer, outcome unknown: " + err.Error()
		if jerr := x.Journal.UpdateStep(ctx, x.Epoch, *st); jerr != nil {
			return fmt.Errorf("journal outcome of %s: %w", describe(*st), jerr)
		}
		return x.event(ctx, st, fmt.Sprintf("%s: no answer (%s): it may have been taken; the cloud is asked before anything else is done", describe(*st), err))
	}
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

// outcomeUnknown: the request may have reached the cloud (or the BMC) and been
// carried out though no answer came back.
func outcomeUnknown(err error) bool {
	return errors.Is(err, cloud.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
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
	if ok, err := x.doMove(ctx, st); ok {
		return err
	}
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
		if err := x.mayReset(ctx, st.Server); err != nil {
			return err
		}
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

// mayReset refuses to reset a server whose last recorded action moves it to another
// host (an evacuation, a migration, a resize): that task may complete there, or
// already has, and resetting it for another evacuation could start a second copy.
// Nova shows an evacuation and a rebuild in place alike (REBUILD, rebuilding):
// only the action log tells them apart.
func (x *Executor) mayReset(ctx context.Context, server string) error {
	acts, err := x.Compute.Actions(ctx, server)
	if err != nil {
		return fmt.Errorf("reset-state %s: read its action log first: %w", server, err)
	}
	var last *model.InstanceAction
	for i := range acts {
		if last == nil || !acts[i].Start.Before(last.Start) {
			last = &acts[i]
		}
	}
	if last == nil {
		return nil
	}
	switch last.Action {
	case cloud.ActionEvacuate, cloud.ActionLiveMigration, cloud.ActionMigrate, cloud.ActionResize:
		return cloud.Terminal(fmt.Errorf("reset-state %s refused: its last action is %s (started %s): the server may run, or be about to run, on another host, and resetting it for another evacuation could start a second copy; an operator must check where it runs",
			server, last.Action, last.Start.Format(time.RFC3339)))
	}
	return nil
}

// Settle decides what became of each step journaled as intent whose outcome is
// unknown (a previous owner stopped, or the answer was lost). If the cloud shows
// it was taken, the step is marked issued and is not repeated. If not, it is not
// taken now either: it is marked skipped, and the planner decides again from what
// is observed now, since the world may have moved on (an isolated host that
// reports again must not be powered off by a fence decided before).
func (x *Executor) Settle(ctx context.Context, open []model.Incident) error {
	for i := range open {
		for j := range open[i].Steps {
			st := &open[i].Steps[j]
			if st.State != model.StepIntent {
				continue
			}
			done, how, err := x.happened(ctx, *st)
			if x.Sabotage.RepeatAfterRestart {
				done, err = false, nil
			}
			if err != nil {
				return fmt.Errorf("settle %s: cannot tell whether it was taken: %w", describe(*st), err)
			}
			if done && fabricAction(st.Action) {
				// Read back from the fabric itself: the cut (or its lifting) holds.
				st.State, st.Issued, st.Finished = model.StepSucceeded, x.Now(), x.Now()
				if err := x.Journal.UpdateStep(ctx, x.Epoch, *st); err != nil {
					return fmt.Errorf("journal settled %s: %w", describe(*st), err)
				}
				if err := x.event(ctx, st, fmt.Sprintf("settled: %s was taken (%s); not repeated", describe(*st), how)); err != nil {
					return err
				}
				continue
			}
			if done {
				x.issued(st, x.Now())
				if err := x.Journal.UpdateStep(ctx, x.Epoch, *st); err != nil {
					return fmt.Errorf("journal settled %s: %w", describe(*st), err)
				}
				if err := x.event(ctx, st, fmt.Sprintf("settled: %s was taken (%s); not repeated", describe(*st), how)); err != nil {
					return err
				}
				continue
			}
			st.State, st.Finished = model.StepSkipped, x.Now()
			st.Error = "not taken (" + how + "); decided again from what is observed now"
			if err := x.Journal.UpdateStep(ctx, x.Epoch, *st); err != nil {
				return fmt.Errorf("journal settled %s: %w", describe(*st), err)
			}
			if err := x.event(ctx, st, fmt.Sprintf("settled: %s was not taken (%s); the planner decides again from what is observed now", describe(*st), how)); err != nil {
				return err
			}
		}
	}
	return nil
}

// cloudAction names the instance action the cloud records for a step ("" for
// steps it records none for).
func cloudAction(a model.Action) string {
	switch a {
	case model.ActReboot, model.ActHardReboot:
		return cloud.ActionReboot
	case model.ActRebuild:
		return cloud.ActionRebuild
	case model.ActEvacuate:
		return cloud.ActionEvacuate
	}
	return moveAction(a)
}

func count(acts []model.InstanceAction, name string) int {
	n := 0
	for _, a := range acts {
		if a.Action == name {
			n++
		}
	}
	return n
}

// happened asks the cloud whether the step's action was taken after its intent,
// and says how it knows.
func (x *Executor) happened(ctx context.Context, st model.Step) (bool, string, error) {
	if fabricAction(st.Action) {
		return x.fabricHappened(ctx, st)
	}
	if st.Action == model.ActFence {
		if x.Fencer == nil || !x.Fencer.CanFence(st.Host) {
			return false, "no fence device", nil
		}
		p, err := x.Fencer.PowerStatus(ctx, st.Host)
		if err != nil {
			return false, "", err
		}
		if p == model.PowerOff {
			return true, "its BMC reports the power off", nil
		}
		return false, fmt.Sprintf("its BMC reports the power %s", cmp.Or(string(p), "unknown")), nil
	}
	name := cloudAction(st.Action)
	if name == "" {
		// Forcing a service down and resetting a state leave no instance action;
		// nothing proves they were taken, and the planner asks for them again
		// only if they are still needed.
		return false, "the cloud keeps no record of " + string(st.Action), nil
	}
	acts, err := x.Compute.Actions(ctx, st.Server)
	if err != nil {
		return false, "", err
	}
	n := count(acts, name)
	if st.Prior >= 0 {
		if n > st.Prior {
			return true, fmt.Sprintf("the server's action log holds %d %s actions, %d before the intent", n, name, st.Prior), nil
		}
		return false, fmt.Sprintf("the server's action log holds %d %s actions, as before the intent", n, name), nil
	}
	// A step journaled before action logs were counted: by time, on the cloud's
	// record, with a minute of tolerance on the side of "taken" (never repeated).
	for _, a := range acts {
		if a.Action == name && !a.Start.Before(st.Started.Add(-time.Minute)) {
			return true, fmt.Sprintf("the server's action log shows %s at %s", name, a.Start.Format(time.RFC3339)), nil
		}
	}
	return false, "the server's action log shows no " + name + " after the intent", nil
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
	case st.Action == model.ActEvacuate, model.IsMove(st.Action):
		return fmt.Sprintf("%s %s from %s", a, st.Server, st.Host)
	case st.Server != "":
		return a + " " + st.Server
	default:
		return a + " " + st.Host
	}
}
