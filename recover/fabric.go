package recover

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// fabricAction: the steps of the fabric fence, carried out through cloud.Fabric and
// confirmed by reading the ports and attachments back, not by a later observation
// of the compute cloud.
func fabricAction(a model.Action) bool {
	return a == model.ActPortsDown || a == model.ActPortsUp || a == model.ActDetachVols
}

// concludeFabric reads the fabric back after a fabric step was taken and journals
// its outcome: succeeded only when the read-back shows it holds.
func (x *Executor) concludeFabric(ctx context.Context, st *model.Step, r result) error {
	ids, err := r.ids, r.err
	if err != nil && outcomeUnknown(err) {
		st.Error = "no answer, outcome unknown: " + err.Error()
		if jerr := x.Journal.UpdateStep(ctx, x.Epoch, *st); jerr != nil {
			return fmt.Errorf("journal outcome of %s: %w", describe(*st), jerr)
		}
		return x.event(ctx, st, fmt.Sprintf("%s: no answer (%s): it may have been taken; the fabric is read before anything else is done", describe(*st), err))
	}
	var how string
	if err == nil {
		var ok bool
		ok, how, err = x.confirmFabric(ctx, *st)
		if err == nil && !ok {
			err = fmt.Errorf("%s %s: taken, but the read-back does not confirm it: %s", st.Action, st.Server, how)
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
	st.State, st.Issued, st.Finished = model.StepSucceeded, now, now
	if jerr := x.Journal.UpdateStep(ctx, x.Epoch, *st); jerr != nil {
		return fmt.Errorf("journal outcome of %s: %w", describe(*st), jerr)
	}
	what := "ports " + strings.Join(ids, ", ")
	if st.Action == model.ActDetachVols {
		what = "volumes " + strings.Join(ids, ", ")
		if len(ids) == 0 {
			what = "no volume attached to " + st.Host
		}
	}
	return x.event(ctx, st, fmt.Sprintf("done: %s (%s); confirmed: %s", describe(*st), what, how))
}

func (x *Executor) doFabric(ctx context.Context, st model.Step) ([]string, error) {
	if x.Fabric == nil {
		return nil, cloud.Terminal(fmt.Errorf("%s %s: %w: Vigil was given no network or block-storage service", st.Action, st.Server, cloud.ErrNoFabric))
	}
	var ids []string
	var err error
	switch st.Action {
	case model.ActPortsDown:
		ids, err = x.Fabric.PortsDown(ctx, st.Server, st.Host)
	case model.ActPortsUp:
		ids, err = x.Fabric.PortsUp(ctx, st.Server)
	case model.ActDetachVols:
		ids, err = x.Fabric.CutVolumes(ctx, st.Server, st.Host)
	}
	if errors.Is(err, cloud.ErrNoFabric) && !cloud.IsTerminal(err) {
		err = cloud.Terminal(err) // the service will not appear by retrying
	}
	return ids, err
}

// confirmFabric reads the server's fabric back and says whether the step holds.
func (x *Executor) confirmFabric(ctx context.Context, st model.Step) (bool, string, error) {
	f, err := x.Fabric.FabricState(ctx, st.Server)
	if err != nil {
		return false, "", fmt.Errorf("read back %s of %s: %w", st.Action, st.Server, err)
	}
	switch st.Action {
	case model.ActPortsDown:
		if !f.PortsDown() {
			return false, fmt.Sprintf("a port of %s is still admin up", st.Server), nil
		}
		return true, fmt.Sprintf("%d ports admin down", len(f.Ports)), nil
	case model.ActPortsUp:
		if !f.PortsUp() {
			return false, fmt.Sprintf("a port of %s is still admin down", st.Server), nil
		}
		return true, fmt.Sprintf("%d ports admin up", len(f.Ports)), nil
	default:
		if left := f.AttachedTo(st.Host); len(left) > 0 {
			return false, fmt.Sprintf("%d attachments of %s to %s remain (first: volume %s)", len(left), st.Server, st.Host, left[0].Volume), nil
		}
		return true, fmt.Sprintf("no attachment of %s to %s", st.Server, st.Host), nil
	}
}

// fabricHappened settles a fabric step left as intent: the fabric's own state says
// whether it holds; a step that does not hold goes back to the planner.
func (x *Executor) fabricHappened(ctx context.Context, st model.Step) (bool, string, error) {
	if x.Fabric == nil {
		return false, "no fabric configured", nil
	}
	ok, how, err := x.confirmFabric(ctx, st)
	if err != nil {
		return false, "", err
	}
	return ok, "the fabric shows " + how, nil
}
