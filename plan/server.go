package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// server advances one server incident along its policy's ladder.
// RuleServerLeftCluster closes the incident of a server that no cluster holds any more.
const RuleServerLeftCluster = "server-left-cluster"

func (p *planner) server(inc *model.Incident) {
	in := p.in
	id := inc.Subject.ID
	pol := p.policy(inc.Policy)
	srv, present := in.Servers[id]
	v := in.Verdicts[inc.Subject]

	if in.Sabotage.GiveUpSilently && len(inc.Steps) > 0 {
		p.change(inc, model.IncidentResolved, "")
		return
	}
	if st := inc.InFlight(); st != nil {
		switch st.State {
		case model.StepPlanned, model.StepIntent:
			return // the executor owns it (and resumes it after a restart)
		case model.StepIssued:
			if model.IsMove(st.Action) {
				if r := p.judgeMove(inc, st); r == moveDone {
					p.change(inc, model.IncidentResolved, fmt.Sprintf("server ACTIVE on host %s after %s (step %d)", in.Servers[id].Host, st.Action, st.Seq))
					return
				} else if r != moveFailed {
					return
				}
				break // failed: the ladder moves on
			}
			if p.activeSince(id, inc.ForeignTime(st, st.Issued, in.Now), "") {
				p.finish(inc, st, model.StepSucceeded, "", false)
				p.change(inc, model.IncidentResolved, fmt.Sprintf("server ACTIVE again after %s (step %d)", st.Action, st.Seq))
				return
			}
			if in.Now.Before(st.Deadline) || in.CloudErr != "" {
				return // not yet, or the cloud cannot be seen: an outage proves nothing
			}
			p.finish(inc, st, model.StepFailed, fmt.Sprintf("server not ACTIVE within %s of the %s (status %s)", st.Timeout, st.Action, srv.Status), false)
		}
	}
	if present && srv.Status == model.StatusVerify && srv.TaskState == "" && succeeded(inc.Steps, model.ActColdMigrate, id) && in.CloudErr == "" {
		// Its cold migration landed; the confirmation failed or was not taken yet.
		p.retryOrEscalate(inc, pol, model.Step{Action: model.ActConfirmMigrate, Server: id, Host: lastOf(inc.Steps, model.ActColdMigrate, id).Host,
			Target: srv.Host, Timeout: pol.StepTimeout, Rule: fmt.Sprintf("move-confirm: server %s waits in VERIFY_RESIZE on %s after its cold migration: confirm it", id, srv.Host)},
			"confirmation of the migration of "+id+" failed")
		return
	}
	if present && !v.Failed && v.Server == string(model.ServerHealthy) {
		p.change(inc, model.IncidentResolved, "server healthy again without further action: "+strings.Join(v.Evidence, "; "))
		return
	}
	if _, member := p.member[id]; !member && inc.InFlight() == nil {
		// Its cluster let it go (an operator removed it, or its stack, server group
		// or metadata no longer lists it): that is the owner's choice, and Vigil
		// takes no further step on it.
		p.change(inc, model.IncidentSuperseded, fmt.Sprintf("server %s is no longer a member of any cluster "+
			"(removed, or its source no longer lists it): Vigil no longer recovers it (rule %s)", id, RuleServerLeftCluster))
		return
	}
	if hid, ok := p.hostIncident[srv.Host]; ok && present {
		// The host's incident owns its servers now; a step of ours still in flight
		// is abandoned (its effect, if any, is seen by the host's incident).
		for i := range inc.Steps {
			if st := &inc.Steps[i]; !st.State.Done() && st.State != model.StepIntent {
				p.finish(inc, st, model.StepSkipped, fmt.Sprintf("superseded by host %s's incident %d", srv.Host, hid), false)
				delete(p.owner, st.Server)
			}
		}
		if inc.InFlight() == nil {
			p.change(inc, model.IncidentSuperseded, fmt.Sprintf("host %s failed; its incident %d recovers this server", srv.Host, hid))
		}
		return
	}
	if in.CloudErr != "" {
		// An outage concludes nothing: no escalation on a deadline either.
		p.change(inc, model.IncidentWaiting, "waiting: the cloud cannot be seen ("+in.CloudErr+"); no action without a fresh observation")
		return
	}
	fault := faultOf(inc, v)
	if deadline := pol.DeadlineFor(fault); in.Now.Sub(inc.Opened) >= deadline {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("not recovered within the policy deadline %s%s; %s", deadline, forFault(pol, fault), lastError(inc.Steps)))
		return
	}
	if !present {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"server %s no longer exists in the cloud (deleted outside Vigil); Vigil does not recreate servers: re-create it and update the cluster", id))
		return
	}
	if hv, ok := in.Verdicts[model.Subject{Kind: model.KindHost, ID: srv.Host}]; ok && hv.Host != string(model.HostUp) {
		p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: its host %s is %s; no action on its servers until that is settled", srv.Host, hv.Host))
		return
	}
	if v.Server == string(model.ServerRecovering) {
		return // a task is running on it (ours or someone else's); its outcome decides
	}
	if v.Rule == model.RuleServerHistoryUnread {
		return // its action log is read first: a move may have put its copy elsewhere
	}
	if n := attempts(inc.Steps, func(model.Step) bool { return true }); n >= pol.AttemptsFor(fault) {
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("gave up after %d attempts (policy max_attempts%s); %s", n, forFault(pol, fault), lastError(inc.Steps)))
		return
	}

	if v.Rule == model.RuleServerMigrationInterrupted {
		// Its copy may run on the migration's destination: a reboot or rebuild here
		// could start a second one, and only an operator can see which runs.
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"server %s failed during a migration (%s): Vigil does not reboot, rebuild or evacuate it, since its copy may run on the destination; an operator must check where it runs, then repair it",
			id, strings.Join(v.Evidence, "; ")))
		return
	}
	action, attempt, why := nextRung(pol, fault, inc.Steps, p.relapse(inc, fault))
	if action == "" {
		p.change(inc, model.IncidentEscalated, why)
		return
	}
	if action == model.ActNotifyOnly {
		p.change(inc, model.IncidentEscalated, notifyOnly(pol.Name, cmpOr(fault, "unknown"), why))
		return
	}
	if last := lastFinished(inc.Steps); last != nil && last.Retryable && in.Now.Sub(last.Finished) < backoff(attempt) {
		return
	}
	if action == model.ActEvacuate {
		// Evacuating from a live host would start a second copy beside the first; the
		// host cannot be fenced for one server without killing its others. (Its host's
		// failure is the other path to evacuation, through a host incident and a fence.)
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"policy %s: the next rung is evacuate, but host %s is up: evacuation needs a fenced host and Vigil does not power off a live host for one server; %s; an operator must move or repair the server (e.g. cold migration)",
			pol.Name, srv.Host, lastError(inc.Steps)))
		return
	}
	if model.IsMove(action) {
		// A ladder's migration rung needs its source alive like any migration (rule
		// migrate-needs-live-source): a host judged up may have just lost its power
		// or its agent. It waits; if the host fails, its own incident takes over.
		if ok, _, whyNot := p.sourceAlive(srv.Host, false); !ok {
			p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: migrate-needs-live-source: the next rung is %s, but %s", action, whyNot))
			return
		}
	}
	st := model.Step{Action: action, Server: id, Host: srv.Host, Attempt: attempt, Timeout: pol.StepTimeout, Rule: why}
	switch {
	case action == model.ActHardReboot:
		st.Hard = true
	case action == model.ActReboot && srv.Status != model.StatusActive:
		st.Hard = true // Nova allows a soft reboot only from ACTIVE
		st.Rule += fmt.Sprintf("; status %s refuses a soft reboot, so a hard one", srv.Status)
	}
	p.take(inc, st)
}

// nextRung picks the ladder's next action: the same one again after a passing
// failure, the next rung after a refusal or a timeout.
// The ladder is the policy's for the incident's fault (Policy.LadderFor).
func nextRung(pol model.Policy, fault string, steps []model.Step, relapsed *relapse) (model.Action, int, string) {
	ladder := pol.LadderFor(fault)
	name := "ladder"
	if _, own := pol.Ladders[fault]; own && len(pol.Ladders[fault]) > 0 {
		name = "ladder for " + fault
	}
	last := lastFinished(steps)
	if last == nil && relapsed != nil {
		// The rung that brought the server back did not last: climb from it, as if
		// it had failed in this incident (an app that only a rebuild cures must not
		// be rebooted forever, one short-lived recovery at a time).
		i := slices.Index(ladder, relapsed.Action)
		how := fmt.Sprintf("server failed again (%s) %s after %s brought it back (incident %d)", cmpOr(fault, "fault unknown"),
			relapsed.gap.Round(time.Second), relapsed.Action, relapsed.incident)
		if i < 0 || i+1 >= len(ladder) {
			return "", 0, fmt.Sprintf("policy %s: %s exhausted: %s, its last rung; an operator must repair it", pol.Name, name, how)
		}
		return ladder[i+1], 1, fmt.Sprintf("policy %s: %s rung %d of %d (%s): %s", pol.Name, name, i+2, len(ladder), ladder[i+1], how)
	}
	if last == nil {
		return ladder[0], 1, fmt.Sprintf("policy %s: %s rung 1 of %d (%s): server failed (%s)", pol.Name, name, len(ladder), ladder[0], cmpOr(fault, "fault unknown"))
	}
	i := slices.Index(ladder, last.Action)
	if last.Retryable {
		return last.Action, last.Attempt + 1, fmt.Sprintf("policy %s: retry %s (attempt %d): %s", pol.Name, last.Action, last.Attempt+1, last.Error)
	}
	if i < 0 || i+1 >= len(ladder) {
		return "", 0, fmt.Sprintf("policy %s: %s exhausted (%s); %s", pol.Name, name, tried(steps), lastError(steps))
	}
	next := ladder[i+1]
	return next, 1, fmt.Sprintf("policy %s: %s rung %d of %d (%s) after %s failed: %s", pol.Name, name, i+2, len(ladder), next, last.Action, last.Error)
}

// RelapseWindow: a server that fails again (the same fault) within this long of the
// step that brought it back has relapsed: its new incident climbs on from that
// step's rung instead of starting the ladder over.
const RelapseWindow = 5 * time.Minute

// relapse is the step of a resolved incident that brought its server back, too
// briefly.
type relapse struct {
	Action   model.Action
	incident int64
	gap      time.Duration
}

// relapse finds, for an incident with no step yet, the step of the subject's last
// resolved incident (of the same fault) whose recovery did not last RelapseWindow.
func (p *planner) relapse(inc *model.Incident, fault string) *relapse {
	if len(inc.Steps) > 0 {
		return nil
	}
	prev, ok := p.in.LastClosed[inc.Subject]
	if !ok || prev.ID == inc.ID || prev.State != model.IncidentResolved || inc.Opened.Sub(prev.Closed) > RelapseWindow {
		return nil
	}
	if prev.Fault != "" && fault != "" && prev.Fault != fault {
		return nil // another failure: its own ladder from the start
	}
	for i := len(prev.Steps) - 1; i >= 0; i-- {
		if st := prev.Steps[i]; st.State == model.StepSucceeded && st.Server == inc.Subject.ID {
			return &relapse{Action: st.Action, incident: prev.ID, gap: inc.Opened.Sub(st.Finished)}
		}
	}
	return nil
}

// faultOf is the incident's fault: as recorded when it opened, else (an incident
// from before faults were kept) its current verdict's.
func faultOf(inc *model.Incident, v model.Verdict) string {
	if inc.Fault != "" {
		return inc.Fault
	}
	if v.Failed {
		return v.Fault
	}
	return ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func lastFinished(steps []model.Step) *model.Step {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].State == model.StepFailed || steps[i].State == model.StepSucceeded {
			return &steps[i]
		}
	}
	return nil
}

func lastError(steps []model.Step) string {
	if w := lastWould(steps); w != nil {
		return fmt.Sprintf("%s: nothing was done (it would have: %s)", RuleDryRun, WouldAction(*w))
	}
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Error != "" {
			return fmt.Sprintf("last error: %s: %s", steps[i].Action, steps[i].Error)
		}
	}
	return "no step failed"
}

func tried(steps []model.Step) string {
	var names []string
	for _, st := range steps {
		if st.State != model.StepSkipped {
			names = append(names, string(st.Action))
		}
	}
	return "tried " + strings.Join(slices.Compact(names), " → ")
}
