package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// evacuees are the protected servers a host incident must move: those it already
// has evacuate steps for, and the protected servers still placed on the host.
func (p *planner) evacuees(inc *model.Incident) []string {
	set := map[string]bool{}
	for _, st := range inc.Steps {
		if st.Action == model.ActEvacuate {
			set[st.Server] = true
		}
	}
	for _, id := range p.protectedOn(inc.Subject.ID) {
		set[id] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// host advances one host incident: fence (power off, verified), mark the service
// down, then evacuate each protected server. Nothing is evacuated without the fence.
func (p *planner) host(inc *model.Incident) {
	in := p.in
	name := inc.Subject.ID
	h := in.Hosts[name]
	v := in.Verdicts[inc.Subject]
	servers := p.evacuees(inc)
	pol := p.hostPolicy(servers)

	// Outcomes of the steps in flight.
	pending := false
	for i := range inc.Steps {
		st := &inc.Steps[i]
		switch st.State {
		case model.StepPlanned, model.StepIntent:
			pending = true
		case model.StepIssued:
			if model.IsMove(st.Action) {
				// A migration off the host while it was isolated (moveOff).
				if p.judgeMove(inc, st) == moveWaiting {
					pending = true
				}
				continue
			}
			done := false
			switch st.Action {
			case model.ActFence:
				done = h.Power == model.PowerOff
			case model.ActMarkDown:
				done = h.ForcedDown
			case model.ActEvacuate:
				done = p.activeSince(st.Server, inc.ForeignTime(st, st.Issued, in.Now), name)
			case model.ActResetState:
				s := in.Servers[st.Server]
				done = s.TaskState == "" && s.Status == model.StatusError
			}
			switch {
			case done:
				p.finish(inc, st, model.StepSucceeded, "", false)
			case !in.Now.Before(st.Deadline) && in.CloudErr == "": // an outage proves nothing
				p.finish(inc, st, model.StepFailed, fmt.Sprintf("not confirmed within %s", st.Timeout), true)
			default:
				pending = true
			}
		}
	}
	// A fence is proof only while it holds: the BMC still reports the power off, or,
	// where the policy accepts the service fence alone, the service is still forced
	// down. A BMC that contradicted its host (FenceDoubt) is no proof at all.
	markedDown := succeeded(inc.Steps, model.ActMarkDown, "") && h.ForcedDown
	doubt := in.FenceDoubt[name]
	bmc := in.CanFence[name] && doubt == ""
	serviceOnly := !in.CanFence[name] && pol.Proof() == model.FenceProofService
	// Where the policy accepts it and no BMC answers, the fabric fence is the proof
	// (plan/fabric.go): the host counts as fenced once forced down, and each server
	// is evacuated only after its own ports and volumes are cut, read back.
	fabric := p.fabricProofKept(inc, h, pol)
	fenced := bmc && succeeded(inc.Steps, model.ActFence, "") && h.Power == model.PowerOff ||
		serviceOnly && markedDown || fabric != "" && markedDown || in.Sabotage.SkipFence
	acted := attempts(inc.Steps, func(model.Step) bool { return true }) > 0

	if v.Host == string(model.HostPartitioned) {
		// Vigil is cut off from it and many others: nothing is concluded, nothing
		// new is done (a step already handed to the executor is its to settle).
		p.change(inc, model.IncidentWaiting, "waiting: controller-partitioned: "+strings.Join(v.Evidence, "; "))
		return
	}
	if v.Host == string(model.HostIsolated) && (p.movesIsolated(name) || slices.ContainsFunc(inc.Steps, func(st model.Step) bool { return model.IsMove(st.Action) })) {
		// Alive but cut off on a path, and a policy of its servers moves them away
		// (ladders.host-isolated): migrated, never fenced nor evacuated.
		p.moveOff(inc, "move-off ("+model.FaultHostIsolated+")", true, p.isolatedLadder)
		return
	}
	if v.Host == string(model.HostIsolated) {
		// Alive on another path: never fenced nor evacuated (rule host-isolated-alive).
		for i := range inc.Steps {
			if st := &inc.Steps[i]; st.State == model.StepIssued {
				p.finish(inc, st, model.StepSkipped, "host heard on another path: it is alive", false)
			}
		}
		if waiting, ok := p.fabricLift(inc, pol, true); !ok || waiting > 0 {
			return // ports Vigil set down go up again first
		}
		p.change(inc, model.IncidentResolved, "host isolated but alive (heard on another path or by its peers): no fence and no evacuation; "+strings.Join(v.Evidence, "; "))
		return
	}
	if acted && (h.Maintenance || v.Host == string(model.HostMaintenance)) && !p.fenceHeld(inc, h, bmc) {
		// An operator took the host out of Vigil's care mid-recovery, before a fence
		// held: Vigil cannot judge it any more (maintenance masks whether it lives),
		// so it takes no further step on it (sim seed 6271 of issue 14: it came back
		// while Vigil was down, and a retried fence powered it off alive).
		for i := range inc.Steps {
			if st := &inc.Steps[i]; st.State == model.StepIssued {
				p.finish(inc, st, model.StepSkipped, "the host was put in maintenance", false)
			}
		}
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("an operator put host %s in maintenance during its recovery, before it was fenced: Vigil takes no further step on it; the operator owns it now", name))
		return
	}
	if !acted && !v.Failed {
		if why, ok := p.maintenanceDown(inc, v); ok {
			p.change(inc, model.IncidentEscalated, why)
			return
		}
		if h.Maintenance || v.Host == string(model.HostMaintenance) {
			p.change(inc, model.IncidentResolved, "an operator put the host in maintenance before any action")
		} else {
			p.change(inc, model.IncidentResolved, "host came back before any action: "+strings.Join(v.Evidence, "; "))
		}
		return
	}
	if in.CloudErr != "" {
		p.change(inc, model.IncidentWaiting, "waiting: the cloud cannot be seen ("+in.CloudErr+"); no action without a fresh observation")
		return
	}
	if v.Host == string(model.HostUp) {
		// Alive: its compute reports (whatever its BMC or a flag says). It must not be
		// fenced or evacuated now. Steps in flight are abandoned; servers still on it
		// are recovered in place by their own incidents.
		for i := range inc.Steps {
			if st := &inc.Steps[i]; st.State == model.StepIssued {
				p.finish(inc, st, model.StepSkipped, "host came back: its compute reports", false)
			}
		}
		if waiting, ok := p.fabricLift(inc, pol, true); !ok || waiting > 0 {
			return // ports Vigil set down go up again first
		}
		p.change(inc, model.IncidentResolved, "host came back (its compute reports): no fence and no evacuation from a live host; "+strings.Join(v.Evidence, "; "))
		return
	}
	// On facts as old as the last poll (a notification, the agents' signals) nothing
	// is decided, except the fence and force-down of a host proven dead by its BMC
	// (detect's host-bmc-off) whose BMC was read with this very observation
	// (PowerRead): that proof is this reconcile's own BMC read, the
	// fence reads the BMC again, and the force-down follows only a confirmed off.
	// An evacuation always waits for a listing.
	stale := hostFactsStale(in) != ""
	if stale && (v.Host != string(model.HostDead) || !in.PowerRead[name]) {
		// No change of state either: the next poll decides. (Seed 1440 of issue 14:
		// a notification's reconcile, with no BMC read, took the power "off" read
		// before an operator powered the host on in that very second for proof, and
		// fenced it alive.)
		return
	}
	if !fenced && bmc && succeeded(inc.Steps, model.ActFence, "") && len(p.unmoved(inc, servers)) == 0 {
		// The proof held while every protected server was moved off: the host's power
		// coming back now (an operator's repair) starts none of them again, and the
		// host may well be alive: it is not fenced again.
		fenced = true
	}
	if !fenced && bmc && succeeded(inc.Steps, model.ActFence, "") && h.Power == model.PowerOn && in.CloudErr == "" {
		// Powered on again after its fence, before its servers were moved: someone
		// (an operator, a BMC power policy) brought it back, so it may be alive and
		// must not be fenced again; without a current proof nothing is evacuated.
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"host %s was powered on again after its fence, before its protected servers %s were moved: Vigil neither fences it again (it may be alive) nor evacuates (no proof its copies are off); an operator must decide",
			name, strings.Join(p.unmoved(inc, servers), ", ")))
		return
	}
	refence := ""
	if !fenced && bmc && succeeded(inc.Steps, model.ActFence, "") {
		refence = fmt.Sprintf("the BMC of host %s no longer confirms the power off: fence it again before any evacuation", name)
	}
	if reason, ok := p.hostNotifyOnly(name, servers); ok {
		p.change(inc, model.IncidentEscalated, reason) // before any fence: the policy wants an operator
		return
	}
	if deadline := pol.DeadlineFor(model.FaultHostDead); in.Now.Sub(inc.Opened) >= deadline {
		why := lastError(inc.Steps)
		if inc.State == model.IncidentWaiting && !strings.HasPrefix(inc.Reason, unsettledWait) {
			// What it waited for (room, a group's rule) says most; not a wait for a
			// step's outcome, which holds this very escalation's reason (it grew at
			// every round).
			why = cmp.Or(inc.Reason, why)
		}
		hint := ""
		if !fenced {
			hint = proofHint(pol, in.Fabric)
		}
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("not recovered within the policy deadline %s%s; %s%s%s", deadline, forFault(pol, model.FaultHostDead), why, hint, p.fabricNote(inc)))
		return
	}
	// Lifting the ports of a server that runs elsewhere repairs, it fences nothing:
	// neither the brake nor a fencing step in flight holds it back.
	if _, ok := p.fabricLift(inc, pol, false); !ok {
		return
	}
	if reason, ok := brakeOn(p.braked, h.Segment); ok {
		p.change(inc, model.IncidentWaiting, reason)
		return
	}
	if pending && (!fenced || !markedDown) {
		return // one fencing step at a time
	}

	// 1. Fence: proof that the host's copies are off.
	if !fenced && doubt != "" {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"no fence proof: the fence device of host %s is not trusted (%s); Vigil does not fence through it nor evacuate without it: an operator must check the BMC configuration and the host", name, doubt))
		return
	}
	if !fenced {
		if fabric != "" {
			if !skippedWith(inc.Steps, model.ActFence, ruleFabricProof) {
				p.take(inc, model.Step{Action: model.ActFence, Host: name, State: model.StepSkipped, Rule: fabric})
				p.skipLast(inc)
			}
		} else if !in.CanFence[name] {
			if pol.Proof() != model.FenceProofService {
				p.change(inc, model.IncidentEscalated, fmt.Sprintf(
					"no fence proof: host %s has no BMC configured and policy %s does not allow evacuating on a forced-down service alone (forced down is not proof its VMs are off); configure its BMC or set service_fence_only%s", name, pol.Name, proofHint(pol, in.Fabric)))
				return
			}
			if !skipped(inc.Steps, model.ActFence) {
				p.take(inc, model.Step{Action: model.ActFence, Host: name, State: model.StepSkipped,
					Rule: fmt.Sprintf("policy %s: service_fence_only: no BMC for %s, forcing its service down is the fence", pol.Name, name)})
				p.skipLast(inc)
			}
		} else {
			if why := in.FenceUnconfirmed[name]; why != "" {
				p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: the identity of the BMC of host %s cannot be read now (%s): no fence goes through an entry whose machine is not confirmed%s", name, why, proofHint(pol, in.Fabric)))
				return
			}
			if last := lastOf(inc.Steps, model.ActFence, ""); last != nil && last.State == model.StepFailed && !last.Retryable {
				// Refused for good (credentials, privilege, a BMC that is not the one
				// pinned): trying again changes nothing.
				p.change(inc, model.IncidentEscalated, fmt.Sprintf("fence of host %s refused: %s; no evacuation without proof the host is off", name, last.Error))
				return
			}
			if v.Host == string(model.HostDead) && in.PowerRead[name] && h.Power == model.PowerOff && !succeeded(inc.Steps, model.ActFence, "") {
				// Proven dead by its trusted BMC, read with this very observation: the
				// power is off already, there is nothing to power off. The fence is
				// that confirmation (rule fence-confirmed-off), journaled as such;
				// it holds while the BMC goes on saying off, like any fence.
				p.take(inc, model.Step{Action: model.ActFence, Host: name, Timeout: pol.StepTimeout,
					Rule: fmt.Sprintf("fence-confirmed-off: host %s lost its power (its BMC, read with this observation, says off; its agent is silent): nothing to power off", name)})
				p.confirmLast(inc)
				fenced = true
			} else {
				rule := cmp.Or(refence, fmt.Sprintf("host %s down past its grace period: power it off through its BMC and confirm off before any evacuation", name))
				p.retryOrEscalate(inc, pol, model.Step{Action: model.ActFence, Host: name, Timeout: pol.StepTimeout, Rule: rule},
					"fence failed: no evacuation without proof the host is off"+proofHint(pol, in.Fabric))
				return
			}
		}
	}
	// 2. Mark the compute service forced down, so the cloud allows evacuation.
	if !markedDown {
		if stale && succeeded(inc.Steps, model.ActMarkDown, "") {
			return // taken: its flag shows at the next listing, not in facts this old
		}
		p.retryOrEscalate(inc, pol, model.Step{Action: model.ActMarkDown, Host: name, Timeout: pol.StepTimeout,
			Rule: fmt.Sprintf("force the compute service of %s down: the cloud evacuates only from a down service", name)},
			"could not force the compute service down")
		return
	}
	if !fenced || !markedDown || stale {
		return
	}
	if !pol.EvacuateOnHostFailure {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("host %s fenced; policy %s does not evacuate on host failure: an operator must restore its servers", name, pol.Name))
		return
	}
	if pol.FabricFence || fabric != "" {
		p.fabricMissing(inc, pol)
	}
	// 3. Evacuate each protected server (its fabric cut first, plan/fabric.go).
	remaining := 0
	handed := 0
	var interrupted []string
	// capacity-priority: in priority order; once one waits for room, the rest wait.
	togo, capWait, placeWaits := p.unmoved(inc, servers), []string(nil), []string(nil)
	for _, id := range p.byPriority(servers) {
		if succeeded(inc.Steps, model.ActEvacuate, id) {
			continue
		}
		if inFlight(inc.Steps, id) {
			remaining++
			continue
		}
		if s, ok := in.Servers[id]; !ok || s.Host != name {
			handed++ // it left the host (evacuated but failed there, or deleted): its own incident answers it
			continue
		}
		if slices.Contains(in.Running[id], name) {
			// Rule copy-still-runs: the host's own agent, heard now, reports the domain
			// running: evacuating would start a second copy. Wait for the report to change.
			remaining++
			p.hold(id)
			p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: copy-still-runs: the agent of host %s, heard now, reports server %s running there: no evacuation while it runs", name, id))
			continue
		}
		if in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}].Rule == model.RuleServerMigrationInterrupted {
			interrupted = append(interrupted, id) // its copy may run on the destination: never evacuated
			continue
		}
		remaining++
		if owner, ok := p.owner[id]; ok && owner != inc.ID {
			p.hold(id)
			continue // another incident's step is in flight on it; wait for its outcome
		}
		if s := in.Servers[id]; s.Host == name && (s.TaskState != "" || !evacuable(s.Status)) {
			p.hold(id)
			if why := taskMayFinishElsewhere(s); why != "" {
				// Its copy may run, or be about to run, on another host: resetting and
				// evacuating it could make a second one. Wait for the task's outcome;
				// the deadline escalates it if it never comes.
				p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: server %s %s; Vigil neither resets nor evacuates it (a second copy could start) until that task ends", id, why))
				continue
			}
			if last := lastOf(inc.Steps, model.ActResetState, id); last != nil && last.State == model.StepFailed && !last.Retryable {
				p.change(inc, model.IncidentEscalated, fmt.Sprintf("server %s cannot be evacuated: %s", id, last.Error))
				return
			}
			// A task left hanging on the dead host blocks evacuation; the host is fenced,
			// so a task that runs only there can never finish: clear it.
			if !p.retryOrEscalate(inc, pol, model.Step{Action: model.ActResetState, Server: id, Host: name, Timeout: pol.StepTimeout,
				Rule: fmt.Sprintf("server %s is %s with task %q on fenced host %s: reset it to ERROR so it can be evacuated", id, s.Status, s.TaskState, name)},
				"reset-state of "+id+" failed") {
				return
			}
			continue
		}
		if len(capWait) > 0 {
			capWait = append(capWait, id)
			continue
		}
		target, why, short := p.placeFor(inc, name, id, togo)
		if short {
			capWait = append(capWait, id)
			continue
		}
		if why != "" {
			placeWaits = append(placeWaits, why)
			continue
		}
		// Room found: cut the old copy from the network and its volumes first (the
		// room stays held for it meanwhile).
		cutNote := ""
		if pol.FabricFence || fabric != "" {
			done, stop, note := p.fabricCut(inc, pol, name, id, fabric != "")
			if stop {
				return
			}
			if !done {
				continue
			}
			cutNote = note
		}
		if !p.retryOrEscalate(inc, pol, model.Step{Action: model.ActEvacuate, Server: id, Host: name, Target: target,
			Timeout: pol.StepTimeout, Rule: fmt.Sprintf("host %s fenced and marked down: evacuate protected server %s%s%s", name, id, placedOn(target), cutNote)},
			"evacuation of "+id+" failed") {
			return
		}
	}
	lift, ok := p.fabricLift(inc, pol, false)
	if !ok {
		return
	}
	remaining += lift
	if len(capWait) > 0 || len(placeWaits) > 0 {
		p.change(inc, model.IncidentWaiting, p.placementWait(capWait, placeWaits))
	}
	if remaining == 0 && len(interrupted) > 0 {
		// The fence of this host does not reach a copy on a migration's destination:
		// evacuating such a server could start a second one. Only an operator can see
		// where it runs.
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"host %s fenced; servers %s failed during a migration from or to it: Vigil does not evacuate them, since a copy may run on the migration's destination; an operator must check where each runs, then repair it (the other %d protected servers were moved or left the host)",
			name, strings.Join(interrupted, ", "), len(servers)-len(interrupted)))
		return
	}
	if remaining == 0 {
		msg := fmt.Sprintf("host fenced; all %d protected servers ACTIVE on other hosts", len(servers))
		if handed > 0 {
			msg = fmt.Sprintf("host fenced; %d of %d protected servers ACTIVE on other hosts, %d left it and are answered by their own incidents", len(servers)-handed, len(servers), handed)
		}
		p.change(inc, model.IncidentResolved, msg+fabricGaps(inc))
	}
}

// fenceHeld reports whether the host's fence holds: taken, and the power still off
// by a trusted BMC.
func (p *planner) fenceHeld(inc *model.Incident, h model.Host, bmc bool) bool {
	return bmc && succeeded(inc.Steps, model.ActFence, "") && h.Power == model.PowerOff
}

// hostFactsStale (rule host-facts-fresh) says why a host incident takes no new step
// on this plan: a pushed notification tells of one server, so the host's service,
// heartbeat and BMC power are as old as the last poll, and the change it reports
// may be the host's own return (its compute, started again, ends the tasks it left
// there). A fence, a force-down or an evacuation is decided on a listing of the
// hosts and a BMC read taken with it, never on the memory of one.
func hostFactsStale(in *Input) string {
	if in.HostsStale {
		return "host-facts-fresh: the hosts were not read with this observation (a notification): no fence, force-down or evacuation until the next poll"
	}
	return ""
}

// unmoved lists the protected servers still placed on the incident's host with no
// evacuation in flight or done.
func (p *planner) unmoved(inc *model.Incident, servers []string) []string {
	var out []string
	for _, id := range servers {
		if s, ok := p.in.Servers[id]; ok && s.Host == inc.Subject.ID && !inFlight(inc.Steps, id) && !succeeded(inc.Steps, model.ActEvacuate, id) {
			out = append(out, id)
		}
	}
	return out
}

// taskMayFinishElsewhere says why a server's task may complete on a host other than
// its fenced one ("" when it can only run there): a migration (live: the guest may
// already run on the destination; cold: the conductor may finish it) or an
// evacuation or rebuild handed to the conductor (its answer lost, or an operator's).
func taskMayFinishElsewhere(s model.Server) string {
	// (An evacuation looks like a rebuild in place, REBUILD/rebuilding, until the
	// conductor moves it: the executor tells them apart by the action log before any
	// reset, see recover.mayReset.)
	switch s.Status {
	case model.StatusMigrating, model.StatusResize, model.StatusVerify:
		return fmt.Sprintf("is %s (task %q): a migration or resize may complete elsewhere", s.Status, s.TaskState)
	}
	if t := s.TaskState; t == "migrating" || strings.HasPrefix(t, "resize_") {
		return fmt.Sprintf("has task %q: a migration or resize may complete elsewhere", t)
	}
	return ""
}

func evacuable(status string) bool {
	return status == model.StatusActive || status == model.StatusShutoff || status == model.StatusError
}

func placedOn(target string) string {
	if target == "" {
		return " (the cloud's scheduler places it)"
	}
	return " to " + target
}

// retryOrEscalate plans st, or a retry of the last failed step of its kind after its
// backoff, or escalates when the policy's attempts are spent. It returns false when
// the incident was escalated.
func (p *planner) retryOrEscalate(inc *model.Incident, pol model.Policy, st model.Step, what string) bool {
	same := func(s model.Step) bool { return s.Action == st.Action && s.Server == st.Server }
	n := attempts(inc.Steps, same)
	if n >= pol.AttemptsFor(model.FaultHostDead) {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("%s after %d attempts (policy max_attempts); %s", what, n, lastError(inc.Steps)))
		return false
	}
	if n > 0 {
		for i := len(inc.Steps) - 1; i >= 0; i-- {
			if last := inc.Steps[i]; same(last) && last.State == model.StepFailed {
				if p.in.Now.Sub(last.Finished) < backoff(n) {
					return true
				}
				st.Rule = fmt.Sprintf("retry %s (attempt %d) after: %s", st.Action, n+1, last.Error)
				break
			}
		}
	}
	st.Attempt = n + 1
	p.take(inc, st)
	return true
}

// skipLast records the step just taken as skipped (no action; the reason is its rule).
func (p *planner) skipLast(inc *model.Incident) {
	i := len(p.out.Steps) - 1
	if i < 0 || p.out.Steps[i].Incident != inc.ID {
		return
	}
	p.out.Steps[i].State = model.StepSkipped
	inc.Steps[len(inc.Steps)-1].State = model.StepSkipped
	p.budget++
}

// confirmLast marks the step just taken as succeeded by what this observation shows
// (a fence whose power is already confirmed off): journaled, nothing carried out.
func (p *planner) confirmLast(inc *model.Incident) {
	i := len(p.out.Steps) - 1
	if i < 0 || p.out.Steps[i].Incident != inc.ID {
		return
	}
	dry := p.out.Steps[i].State == model.StepWould
	p.out.Steps[i].State = model.StepSucceeded
	inc.Steps[len(inc.Steps)-1].State = model.StepSucceeded
	p.budget++
	if dry && inc.State == model.IncidentWaiting {
		p.change(inc, model.IncidentOpen, "") // nothing to take: a dry run goes on to the next step
	}
}

// place picks an evacuation target with room. With no capacity known anywhere, the
// cloud's scheduler places (target ""). A non-empty reason means no room.
func (p *planner) place(source, server string) (string, string) {
	best, bestFree, known := "", 0, false
	for _, name := range slices.Sorted(maps.Keys(p.in.Hosts)) {
		h := p.in.Hosts[name]
		v := p.in.Verdicts[model.Subject{Kind: model.KindHost, ID: name}]
		if h.Capacity > 0 {
			known = true
		}
		if name == source || h.Disabled || h.Maintenance || h.ForcedDown || v.Host != string(model.HostUp) || h.Capacity <= 0 {
			continue
		}
		if free := h.Capacity - p.used[name]; free > bestFree {
			best, bestFree = name, free
		}
	}
	if !known {
		return "", ""
	}
	if best == "" {
		return "", fmt.Sprintf("waiting: no up host has room for server %s", server)
	}
	p.used[best]++
	return best, ""
}

// lastOf returns the last step of action a on server, if any.
func lastOf(steps []model.Step, a model.Action, server string) *model.Step {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Action == a && steps[i].Server == server {
			return &steps[i]
		}
	}
	return nil
}

func succeeded(steps []model.Step, a model.Action, server string) bool {
	for _, st := range steps {
		if st.Action == a && st.Server == server && st.State == model.StepSucceeded {
			return true
		}
	}
	return false
}

func skipped(steps []model.Step, a model.Action) bool {
	for _, st := range steps {
		if st.Action == a && st.State == model.StepSkipped {
			return true
		}
	}
	return false
}

func inFlight(steps []model.Step, server string) bool {
	for _, st := range steps {
		if st.Server == server && !st.State.Done() {
			return true
		}
	}
	return false
}
