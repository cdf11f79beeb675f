package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// ErrDrainRefused: a drain cannot start on this host (unknown, or not alive: a
// migration needs its source alive).
var ErrDrainRefused = errors.New("drain refused")

// Drain moves every protected server off a live host: a journaled incident of kind
// drain (model.KindDrain) whose steps, one live migration per server (a cold one
// when the live one fails), the planner takes within the limits and the executor
// journals like any (resumed after a restart from Nova's instance actions). A
// drain already under way is returned as is.
func (e *Engine) Drain(ctx context.Context, host string) (model.Incident, error) {
	e.run.Lock()
	defer e.run.Unlock()
	subj := model.Subject{Kind: model.KindDrain, ID: host}
	now := e.cfg.Now()
	e.mu.RLock()
	if inc, ok := e.incidentFor(subj); ok {
		cp := *inc
		cp.Steps = slices.Clone(cp.Steps)
		e.mu.RUnlock()
		return cp, nil
	}
	view := e.det.View()
	h, known := view.Hosts[host]
	v := view.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]
	var prot []string
	for id, s := range view.Servers {
		if s.Host == host && e.det.Protected(id) {
			prot = append(prot, id)
		}
	}
	e.mu.RUnlock()
	slices.Sort(prot)
	switch {
	case !known:
		return model.Incident{}, fmt.Errorf("%w: host %s is not a compute host of the cloud (see vigil ctl status)", ErrDrainRefused, host)
	case v.Failed || h.ForcedDown || h.Service != model.ServiceUp:
		return model.Incident{}, fmt.Errorf("%w: host %s is not alive (Nova: %s%s; Vigil: %s): a migration needs its source alive; a failed host's servers are evacuated by its own incident",
			ErrDrainRefused, host, h.Service, forced(h.ForcedDown), v.Host)
	}
	ev := []string{fmt.Sprintf("an operator asked to drain host %s", host)}
	if len(prot) > 0 {
		ev = append(ev, "protected servers on it: "+strings.Join(prot, ", "))
	} else {
		ev = append(ev, "no protected server on it")
	}
	e.mu.RLock()
	shard := e.shardOf(subj)
	e.mu.RUnlock()
	if err := e.Standby(shard); err != nil {
		return model.Incident{}, fmt.Errorf("drain %s: %w", host, err)
	}
	inc := model.Incident{Subject: subj, State: model.IncidentOpen, Policy: "drain", Rule: model.RuleDrain,
		Evidence: ev, Opened: now, Updated: now, Shard: shard}
	if err := e.cfg.Store.CreateIncident(ctx, e.epochOf(shard), &inc); err != nil {
		return model.Incident{}, fmt.Errorf("drain %s: journal its incident: %w", host, err)
	}
	e.mu.Lock()
	e.open = append(e.open, inc)
	e.mu.Unlock()
	if err := e.emit(ctx, model.Event{At: now, Kind: "incident", Subject: subj.String(), Incident: inc.ID,
		Message: fmt.Sprintf("incident %d opened (%s): %s", inc.ID, inc.Rule, strings.Join(ev, "; "))}); err != nil {
		return model.Incident{}, err
	}
	// Its first steps now, on a fresh listing, not at the next poll.
	if err := e.reconcile(ctx, e.observe(ctx)); err != nil {
		return model.Incident{}, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if cur, ok := e.incidentFor(subj); ok {
		inc = *cur
		inc.Steps = slices.Clone(cur.Steps)
	}
	return inc, nil
}

func forced(f bool) string {
	if f {
		return ", forced down"
	}
	return ""
}
