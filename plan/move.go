package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// Moving servers off a live host: the live-migrate and cold-migrate rungs of a
// server's ladder, an operator's drain (subject kind drain), and an isolated host
// whose policy moves its servers away. A migration needs its source alive: Vigil
// never migrates off a host that is down or dead (evacuation, after a fence, is for
// that).

// moveResult is what became of an issued migration step.
type moveResult int

const (
	moveWaiting moveResult = iota // still moving, or not seen yet
	moveDone                      // ACTIVE and idle on another host
	moveConfirm                   // a cold migration landed (VERIFY_RESIZE elsewhere): its confirmation was planned
	moveFailed                    // it ended with the server on its source, or it timed out
)

// judgeMove finishes an issued migration step by what is observed now (rule
// move-landed: ACTIVE and idle on a host other than its source; rule
// migration-rolled-back: a listing after the step shows it idle on its source). A
// cold migration that landed is confirmed by a step of its own, journaled like any.
func (p *planner) judgeMove(inc *model.Incident, st *model.Step) moveResult {
	in := p.in
	s, ok := in.Servers[st.Server]
	switch {
	case !ok:
		p.finish(inc, st, model.StepFailed, fmt.Sprintf("server %s no longer exists in the cloud", st.Server), false)
		return moveFailed
	case s.Status == model.StatusActive && s.TaskState == "" && s.Host != st.Host && s.Host != "":
		p.finish(inc, st, model.StepSucceeded, "", false)
		return moveDone
	case st.Action == model.ActColdMigrate && s.Status == model.StatusVerify && s.TaskState == "" && s.Host != st.Host:
		p.finish(inc, st, model.StepSucceeded, "", false)
		p.confirm(inc, st.Server, st.Host, s.Host, 1)
		return moveConfirm
	case st.Action != model.ActConfirmMigrate && rolledBack(in, s, st):
		p.finish(inc, st, model.StepFailed, fmt.Sprintf(
			"migration-rolled-back: the %s ended with server %s %s on its source %s (the cloud refused it or rolled it back: its instance actions say why)",
			st.Action, st.Server, s.Status, st.Host), false)
		return moveFailed
	case !in.Now.Before(st.Deadline) && in.CloudErr == "": // an outage proves nothing
		p.finish(inc, st, model.StepFailed, fmt.Sprintf("server not ACTIVE on another host within %s of the %s (status %s, task %q, on %s)",
			st.Timeout, st.Action, s.Status, s.TaskState, s.Host), false)
		return moveFailed
	}
	return moveWaiting
}

// rolledBack: a listing made after the step was issued shows the server idle on
// its source. (Nova sets the task before it answers a migration request, so an idle
// server there means the migration is over.)
func rolledBack(in *Input, s model.Server, st *model.Step) bool {
	return !in.HostsStale && in.CloudErr == "" && in.Now.After(st.Issued) && s.Host == st.Host && s.TaskState == "" &&
		(s.Status == model.StatusActive || s.Status == model.StatusShutoff || s.Status == model.StatusError)
}

// confirm plans the confirmation of a cold migration from source that landed on dest.
func (p *planner) confirm(inc *model.Incident, id, source, dest string, attempt int) bool {
	return p.take(inc, model.Step{Action: model.ActConfirmMigrate, Server: id, Host: source, Target: dest, Attempt: attempt,
		Timeout: p.policyOf(inc).StepTimeout,
		Rule:    fmt.Sprintf("move-confirm: server %s cold-migrated from %s landed on %s (VERIFY_RESIZE): confirm it", id, source, dest)})
}

// sourceAlive (rule migrate-needs-live-source) says whether servers may be
// migrated off host now: its compute serves (up in Nova, not forced down, power not
// off, its agent if it has one not silent on every path) and Vigil judges it up,
// in maintenance, or (allowIsolated) isolated. wait:
// not now, but it may be soon (suspect, or isolated while Nova cannot reach it).
//
// Nova's own word that the compute reports is required even for an isolated host:
// Nova cannot migrate off a compute it cannot reach (the migration hangs, and its
// server is then failed during a migration, which nothing may recover
// automatically), and an agent heard a few seconds ago is no proof the host still
// lives (sim seed 2984 of small14: it had just lost its power).
func (p *planner) sourceAlive(host string, allowIsolated bool) (ok, wait bool, why string) {
	h, known := p.in.Hosts[host]
	v := p.in.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]
	isolated := allowIsolated && v.Host == string(model.HostIsolated)
	switch {
	case !known:
		return false, false, fmt.Sprintf("host %s is not known to the cloud", host)
	case h.ForcedDown:
		return false, false, fmt.Sprintf("the compute service of host %s is forced down", host)
	case h.Power == model.PowerOff:
		return false, false, fmt.Sprintf("the BMC of host %s says its power is off", host)
	case h.Service != model.ServiceUp:
		return false, v.Host == string(model.HostSuspect) || isolated, fmt.Sprintf("Nova reports the compute service of host %s %s: it cannot migrate off a compute it does not reach", host, h.Service)
	case isolated:
		return true, false, ""
	case p.agentSilent(host):
		// Its agent, heard until now, fell silent on every path: the first sign of a
		// power loss, seconds before Nova's heartbeat goes stale (sim seed 590 of
		// issue 15: drained 12 s after it lost its power, while Nova still said up
		// and its miswired BMC answered for another machine). A dead agent on a live
		// host only delays the move: it waits, and the deadline escalates it.
		av := p.in.Verdicts[model.Subject{Kind: model.KindAgent, ID: host}]
		// (The evidence's ages change at every tick; the reason must not.)
		return false, true, fmt.Sprintf("the agent of host %s is silent on every path since %s (rule agent-silent): the host may have lost its power",
			host, av.Since.Format("15:04:05.000"))
	case v.Host == string(model.HostUp), v.Host == string(model.HostMaintenance):
		return true, false, ""
	case v.Host == string(model.HostSuspect):
		return false, true, fmt.Sprintf("host %s is suspect (%s)", host, strings.Join(v.Evidence, "; "))
	}
	return false, false, fmt.Sprintf("host %s is %s", host, v.Host)
}

// agentSilent: the host has an agent and it is silent on every path (its verdict
// suspect, rule agent-silent).
func (p *planner) agentSilent(host string) bool {
	av, ok := p.in.Verdicts[model.Subject{Kind: model.KindAgent, ID: host}]
	return ok && av.Host == string(model.HostSuspect)
}

// movers are the servers a move-off incident moves: those it has steps for, and the
// protected servers still placed on its host.
func (p *planner) movers(inc *model.Incident) []string {
	ids := p.protectedOn(inc.Subject.ID)
	for _, st := range inc.Steps {
		if st.Server != "" && !slices.Contains(ids, st.Server) {
			ids = append(ids, st.Server)
		}
	}
	slices.Sort(ids)
	return ids
}

// drain advances an operator's drain of a live host: one migration per protected
// server on it (live, then cold when the live one fails), within the limits.
func (p *planner) drain(inc *model.Incident) {
	p.moveOff(inc, "drain", false, func(string) []model.Action { return model.DrainLadder })
}

// isolatedLadder is the migration ladder a server's policy gives an isolated host
// (its ladders.host-isolated, migrations only): nil leaves it where it is.
func (p *planner) isolatedLadder(id string) []model.Action {
	pol := p.policy(p.clusterPolicy(p.member[id]))
	return slices.DeleteFunc(slices.Clone(pol.Ladders[model.FaultHostIsolated]), func(a model.Action) bool {
		return a != model.ActLiveMigrate && a != model.ActColdMigrate
	})
}

// movesIsolated reports whether a protected server on host has a policy that moves
// it off an isolated host.
func (p *planner) movesIsolated(host string) bool {
	for _, id := range p.protectedOn(host) {
		if len(p.isolatedLadder(id)) > 0 {
			return true
		}
	}
	return false
}

// moveOff moves each protected server off the incident's host along ladderOf(its
// ID), judging the migrations in flight first. It resolves once none is left on
// the host, and escalates naming each server it could not move and why.
func (p *planner) moveOff(inc *model.Incident, what string, allowIsolated bool, ladderOf func(string) []model.Action) {
	in := p.in
	host := inc.Subject.ID
	servers := p.movers(inc)
	pol := p.hostPolicy(servers)
	for i := range inc.Steps {
		if st := &inc.Steps[i]; st.State == model.StepIssued && model.IsMove(st.Action) {
			p.judgeMove(inc, st)
		}
	}
	if in.CloudErr != "" {
		p.change(inc, model.IncidentWaiting, "waiting: the cloud cannot be seen ("+in.CloudErr+"); no action without a fresh observation")
		return
	}
	alive, wait, why := p.sourceAlive(host, allowIsolated)
	late := !in.Now.Before(inc.Opened.Add(pol.Deadline))
	remaining := 0
	var moved, stuck, kept []string
	for _, id := range servers {
		if inFlight(inc.Steps, id) {
			remaining++
			continue
		}
		s, ok := in.Servers[id]
		if !ok {
			stuck = append(stuck, fmt.Sprintf("%s: no longer exists in the cloud", id))
			continue
		}
		if s.Host != host {
			if s.Status == model.StatusVerify && s.TaskState == "" && succeeded(inc.Steps, model.ActColdMigrate, id) && alive && !late {
				// Our cold migration landed; its confirmation failed or was not taken yet.
				remaining++
				if !p.retryOrEscalate(inc, pol, model.Step{Action: model.ActConfirmMigrate, Server: id, Host: host, Target: s.Host, Timeout: pol.StepTimeout,
					Rule: fmt.Sprintf("move-confirm: server %s cold-migrated from %s waits in VERIFY_RESIZE on %s: confirm it", id, host, s.Host)},
					"confirmation of the migration of "+id+" failed") {
					return
				}
				continue
			}
			moved = append(moved, id+" → "+s.Host)
			continue
		}
		if !alive || late {
			continue // nothing new: judged below once nothing is in flight
		}
		if owner, ok := p.owner[id]; ok && owner != inc.ID {
			remaining++
			continue // another incident's step is in flight on it
		}
		ladder := ladderOf(id)
		if len(ladder) == 0 {
			kept = append(kept, id) // its own policy leaves it there (notify-only)
			continue
		}
		action, attempt, rule := p.nextMove(inc, pol, id, s, ladder)
		if action == "" {
			stuck = append(stuck, fmt.Sprintf("%s: %s", id, rule))
			continue
		}
		remaining++
		if rule == "" {
			continue // a task runs on it, or a retry waits out its backoff
		}
		if !p.take(inc, model.Step{Action: action, Server: id, Host: host, Attempt: attempt, Timeout: pol.StepTimeout,
			Rule: fmt.Sprintf("%s of host %s: %s (the cloud's scheduler places it)", what, host, rule)}) {
			return // the limits: the others wait too
		}
	}
	if remaining > 0 {
		return
	}
	done := fmt.Sprintf("%d protected servers moved", len(moved))
	if len(moved) > 0 {
		done += ": " + strings.Join(moved, ", ")
	}
	if len(kept) > 0 {
		done += fmt.Sprintf("; left on it by their policy (ladders.%s lists no migration): %s", model.FaultHostIsolated, strings.Join(kept, ", "))
	}
	switch {
	case len(stuck) > 0:
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("%s of host %s incomplete: not moved: %s; %s; an operator must move or repair them",
			what, host, strings.Join(stuck, "; "), done))
	case len(p.unmovedOn(host, servers)) == len(kept):
		p.change(inc, model.IncidentResolved, fmt.Sprintf("%s of host %s done: %s", what, host, done))
	case wait && !late:
		p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: migrate-needs-live-source: %s; no migration until it is judged up again", why))
	case late:
		last := lastError(inc.Steps)
		if !alive {
			last = "migrate-needs-live-source: " + why + "; " + last // what it waited for says most
		}
		p.change(inc, model.IncidentEscalated, fmt.Sprintf("%s of host %s not done within the policy deadline %s: servers %s still on it; %s; %s",
			what, host, pol.Deadline, strings.Join(p.unmovedOn(host, servers), ", "), done, last))
	default:
		p.change(inc, model.IncidentEscalated, fmt.Sprintf(
			"%s of host %s stopped: migrate-needs-live-source: %s: a migration needs its source alive, and Vigil never migrates off a host that is down (if it failed, its own incident fences it and evacuates); servers %s still on it; %s",
			what, host, why, strings.Join(p.unmovedOn(host, servers), ", "), done))
	}
}

// unmovedOn lists the servers still placed on host.
func (p *planner) unmovedOn(host string, servers []string) []string {
	var out []string
	for _, id := range servers {
		if s, ok := p.in.Servers[id]; ok && s.Host == host {
			out = append(out, id)
		}
	}
	return out
}

// nextMove picks a server's next migration: the ladder's first rung its status
// allows, the same again after a passing failure (after its backoff), the next
// after a refusal or a rollback. An empty action comes with the reason none is
// left; a non-empty one with an empty rule means not now (a task runs on it, or
// a backoff).
func (p *planner) nextMove(inc *model.Incident, pol model.Policy, id string, s model.Server, ladder []model.Action) (model.Action, int, string) {
	if s.TaskState != "" {
		return model.ActLiveMigrate, 0, "" // wait for its task
	}
	switch s.Status {
	case model.StatusActive:
	case model.StatusShutoff:
		// Only a running server can be live-migrated.
		ladder = slices.DeleteFunc(slices.Clone(ladder), func(a model.Action) bool { return a == model.ActLiveMigrate })
		if len(ladder) == 0 {
			return "", 0, "it is SHUTOFF: only a cold migration moves it, and its ladder has none"
		}
	default:
		return "", 0, fmt.Sprintf("it is %s: the cloud migrates only ACTIVE or SHUTOFF servers", s.Status)
	}
	moves := func(st model.Step) bool {
		return st.Server == id && (st.Action == model.ActLiveMigrate || st.Action == model.ActColdMigrate)
	}
	if n := attempts(inc.Steps, moves); n >= pol.MaxAttempts {
		return "", 0, fmt.Sprintf("gave up after %d migrations (policy max_attempts); %s", n, lastErrorOf(inc.Steps, id))
	}
	var last *model.Step
	for i := len(inc.Steps) - 1; i >= 0; i-- {
		if st := &inc.Steps[i]; moves(*st) && (st.State == model.StepFailed || st.State == model.StepSucceeded) {
			last = st
			break
		}
	}
	switch {
	case last == nil || last.State == model.StepSucceeded:
		return ladder[0], 1, fmt.Sprintf("%s protected server %s", ladder[0], id)
	case last.Retryable:
		if p.in.Now.Sub(last.Finished) < backoff(last.Attempt) {
			return last.Action, 0, ""
		}
		return last.Action, last.Attempt + 1, fmt.Sprintf("retry %s of %s (attempt %d) after: %s", last.Action, id, last.Attempt+1, last.Error)
	}
	i := slices.Index(ladder, last.Action)
	if i+1 >= len(ladder) {
		return "", 0, fmt.Sprintf("tried %s; %s", strings.Join(triedMoves(inc.Steps, id), " → "), lastErrorOf(inc.Steps, id))
	}
	return ladder[i+1], 1, fmt.Sprintf("%s protected server %s after its %s failed: %s", ladder[i+1], id, last.Action, last.Error)
}

func triedMoves(steps []model.Step, id string) []string {
	var out []string
	for _, st := range steps {
		if st.Server == id && st.State == model.StepFailed {
			out = append(out, string(st.Action))
		}
	}
	return slices.Compact(out)
}

func lastErrorOf(steps []model.Step, id string) string {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Server == id && steps[i].Error != "" {
			return fmt.Sprintf("last error: %s: %s", steps[i].Action, steps[i].Error)
		}
	}
	return "no step failed"
}
