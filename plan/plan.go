package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Input is everything a decision may depend on.
type Input struct {
	Now      time.Time
	Hosts    map[string]model.Host
	Servers  map[string]model.Server
	Verdicts map[model.Subject]model.Verdict
	// CloudErr is set while the cloud cannot be seen: no new action is taken.
	CloudErr string
	Clusters []model.Cluster
	Policies map[string]model.Policy
	// Open incidents (not closed), with their steps.
	Open []model.Incident
	// LastClosed is the most recently closed incident per subject.
	LastClosed map[model.Subject]model.Incident
	Limits     model.Limits
	// CanFence lists the hosts with a fence device (BMC).
	CanFence map[string]bool
	// FenceDoubt says why a host's fence device is not trusted (detect.View): it is
	// then never used, and the host's incident escalates instead of fencing.
	FenceDoubt map[string]string
	// FenceUnconfirmed says why a host's BMC identity could not be read just now:
	// no new fence goes through an entry whose machine is not confirmed.
	FenceUnconfirmed map[string]string
	// HostsStale: the hosts (services, heartbeats, BMC power) were not read with the
	// observation behind this plan: a pushed notification tells of servers only.
	HostsStale bool
	// PowerRead names the hosts whose BMC answered with this very observation: only
	// such a fresh answer lets a host proven dead by its BMC be fenced on facts
	// otherwise as old as the last poll (the agents' signals). A notification reads
	// no BMC.
	PowerRead map[string]bool
	// Running names, per server, the hosts whose heard agent reports its domain
	// running (detect.View.Running): a server is never evacuated from a host that
	// still runs it.
	Running map[string][]string
	// Fabric: which halves of the fabric fence the cloud offers (plan/fabric.go).
	Fabric Fabric
	// ServerGroups are the cloud's server groups (affinity, anti-affinity): their
	// rules bind where evacuated members may go.
	ServerGroups []model.ServerGroup
	// Sabotage: deliberate bugs, for the simulation's checker tests only.
	Sabotage model.Sabotage
	// Sharding maps segments to shards; Led, when not nil, names the shards this
	// replica leads: incidents open only for subjects of those (a host's shard is
	// its segment's, a server's its host's); the other shards' leaders answer theirs.
	Sharding model.Sharding
	Led      map[string]bool
	// Others are the open incidents of the shards other replicas lead, as last
	// read: read only, their steps in flight own their servers here too (an
	// evacuation into this replica's shard is not drained or recovered under it:
	// three-replica seed 200).
	Others []model.Incident
}

// Output is what the shell must journal and carry out. New incidents carry negative
// IDs, which their new steps reference until the store assigns real ones.
type Output struct {
	Open    []model.Incident
	Steps   []model.Step
	Updates []StepUpdate
	Changes []Change
}

// StepUpdate records the observed outcome of an issued step.
type StepUpdate struct {
	Incident int64
	Step     int64
	State    model.StepState
	Error    string
	// Retryable: the same action may be taken again (else the ladder moves on).
	Retryable bool
}

// Change moves an incident to a new state, with the reason shown to operators.
type Change struct {
	Incident int64
	State    model.IncidentState
	Reason   string
}

type planner struct {
	in     *Input
	out    Output
	member map[string]string // server -> cluster
	budget int
	used   map[string]int // servers per host, with this round's placements
	// owner maps a server to the incident with a step in flight on it: one
	// recovery per server at a time.
	owner map[string]int64
	// hostIncident maps a host to its open incident.
	hostIncident map[string]int64
	braked       map[string]string
	nextTemp     int64
	// pl is this round's room for evacuated servers (placement.go), built on first use.
	pl   *placement
	noPl bool
}

// Plan decides the next steps.
func Plan(in Input) Output {
	p := &planner{in: &in, member: map[string]string{}, used: map[string]int{}, owner: map[string]int64{}, hostIncident: map[string]int64{}}
	for _, c := range in.Clusters {
		for _, id := range c.Members {
			if _, ok := p.member[id]; !ok {
				p.member[id] = c.Name
			}
		}
	}
	for _, s := range in.Servers {
		p.used[s.Host]++
	}
	inflight := 0
	for _, inc := range in.Open {
		if inc.Subject.Kind == model.KindHost {
			p.hostIncident[inc.Subject.ID] = inc.ID
		}
		for _, st := range inc.Steps {
			if !st.State.Done() {
				if st.State != model.StepPlanned {
					inflight++
				}
				if st.Server != "" {
					p.owner[st.Server] = inc.ID
				}
			}
		}
	}
	for _, inc := range in.Others {
		for _, st := range inc.Steps {
			if !st.State.Done() && st.Server != "" {
				if _, mine := p.owner[st.Server]; !mine {
					p.owner[st.Server] = inc.ID
				}
			}
		}
	}
	p.budget = in.Limits.MaxConcurrent - inflight
	if in.Sabotage.IgnoreLimits {
		p.budget = 1 << 30
	}
	p.braked = Brakes(in.Hosts, in.Verdicts, in.Limits)
	if in.Sabotage.IgnoreBrake {
		p.braked = nil
	}

	// Plan works on its own copies: its input is never modified.
	open := slices.Clone(in.Open)
	for i := range open {
		open[i].Steps = slices.Clone(open[i].Steps)
	}
	if in.CloudErr == "" {
		open = append(open, p.openIncidents(open)...)
	}
	// Host incidents first: a server whose host failed is theirs.
	slices.SortStableFunc(open, func(a, b model.Incident) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Subject.Kind), kindOrder(b.Subject.Kind)), cmp.Compare(a.Opened.UnixNano(), b.Opened.UnixNano()), cmp.Compare(a.ID, b.ID))
	})
	for i := range open {
		inc := &open[i]
		switch inc.Subject.Kind {
		case model.KindHost:
			p.host(inc)
		case model.KindDrain:
			p.drain(inc)
		default:
			p.server(inc)
		}
	}
	return p.out
}

// kindOrder: host incidents first (a failed host's servers are theirs), then
// drains, then servers.
func kindOrder(k string) int {
	switch k {
	case model.KindHost:
		return 0
	case model.KindDrain:
		return 1
	}
	return 2
}

func (p *planner) policy(name string) model.Policy {
	if pol, ok := p.in.Policies[name]; ok {
		return pol
	}
	return model.DefaultPolicy()
}

// openIncidents opens one incident per newly failed protected subject.
func (p *planner) openIncidents(open []model.Incident) []model.Incident {
	busy := map[model.Subject]bool{}
	for _, inc := range open {
		busy[inc.Subject] = true
	}
	var subjects []model.Subject
	for subj, v := range p.in.Verdicts {
		// Only servers and hosts have incidents: an agent's verdict is never one.
		if p.opens(subj, v) && !busy[subj] {
			subjects = append(subjects, subj)
		}
	}
	slices.SortFunc(subjects, func(a, b model.Subject) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.ID, b.ID))
	})
	var opened []model.Incident
	for _, subj := range subjects {
		v := p.in.Verdicts[subj]
		if !p.opens(subj, v) || busy[subj] {
			continue
		}
		if last, ok := p.in.LastClosed[subj]; ok && last.Closed.After(v.Since) && p.answered(last, v) && !p.leftBehind(last) {
			// The same failure was already answered (resolved while it persisted, or
			// escalated). One closed at the very instant this failure began was
			// closed on what preceded it (seed 8697: resolved because the host was
			// only suspect then), not on this one.
			continue
		}
		if _, ok := p.owner[subj.ID]; ok && subj.Kind == model.KindServer {
			continue // another incident has a step in flight on it; its outcome decides
		}
		shard := p.shardOf(subj)
		if p.in.Led != nil && !p.in.Led[shard] {
			continue // another replica leads its shard and answers it
		}
		inc := model.Incident{Subject: subj, State: model.IncidentOpen, Rule: v.Rule,
			Evidence: slices.Clone(v.Evidence), Opened: p.in.Now, Updated: p.in.Now, Shard: shard}
		switch subj.Kind {
		case model.KindServer:
			c, ok := p.member[subj.ID]
			host := p.in.Servers[subj.ID].Host
			if _, hostOpen := p.hostIncident[host]; !ok || hostOpen || v.Rule == model.RuleServerHostDown || p.hostFailed(host) {
				continue // unprotected, or its host's incident answers it
			}
			inc.Cluster = c
			inc.Policy = p.clusterPolicy(c)
			inc.Fault = v.Fault
		case model.KindHost:
			prot := p.protectedOn(subj.ID)
			if len(prot) == 0 {
				continue
			}
			inc.Policy = p.hostPolicy(prot).Name
			inc.Evidence = append(inc.Evidence, fmt.Sprintf("protected servers on it: %s", strings.Join(prot, ", ")))
		}
		p.nextTemp--
		inc.ID = p.nextTemp
		if subj.Kind == model.KindHost {
			p.hostIncident[subj.ID] = inc.ID
		}
		p.out.Open = append(p.out.Open, inc)
		opened = append(opened, inc)
	}
	return opened
}

// shardOf is the shard whose leader answers a subject: its host's segment's.
func (p *planner) shardOf(subj model.Subject) string {
	host := subj.ID
	if subj.Kind == model.KindServer {
		host = p.in.Servers[subj.ID].Host
	}
	return p.in.Sharding.Of(p.in.Hosts[host].Segment)
}

// opens reports whether a verdict opens an incident: a failure, or an isolated
// host whose servers' policy moves them away (ladders.host-isolated).
func (p *planner) opens(subj model.Subject, v model.Verdict) bool {
	return opensIncident(subj, v) || subj.Kind == model.KindHost && v.Host == string(model.HostIsolated) && p.movesIsolated(subj.ID)
}

// answered reports whether a closed incident answered the failure it closed on. A
// server incident superseded by its host's answered it only through the host's:
// while that is open, or if it escalated (its reason covers its servers). One that
// resolved without moving the server (the host came back) left the failure to the
// server's own incident.
func (p *planner) answered(last model.Incident, v model.Verdict) bool {
	if (last.Rule == model.RuleHostMaintenanceDown) != (v.Rule == model.RuleHostMaintenanceDown) {
		// An escalation "in maintenance, not recovered" does not answer the failure
		// seen once the maintenance ended (Vigil recovers it now), nor the reverse.
		return false
	}
	if last.State != model.IncidentSuperseded || last.Subject.Kind != model.KindServer {
		return true
	}
	host := p.in.Servers[last.Subject.ID].Host
	if _, open := p.hostIncident[host]; open {
		return true
	}
	h, ok := p.in.LastClosed[model.Subject{Kind: model.KindHost, ID: host}]
	return ok && h.State == model.IncidentEscalated && !h.Closed.Before(v.Since)
}

// leftBehind reports whether a host incident that resolved left protected servers
// on its host, still failed: servers protected only after it closed (one joined a
// cluster's source later: sim seed 31 of the two-replica sweep), which it never
// answered. Resolved means every protected server it knew runs elsewhere, so any
// other protected server there now is a new failure for a new incident.
//
// A server the closed incident acted on is not one of them: an observation older
// than its evacuation (a listing in flight, a late notification) may still show
// it there, and it was answered (the fabric integration test reopened the host
// for such a server the instant its incident resolved).
func (p *planner) leftBehind(last model.Incident) bool {
	if last.Subject.Kind != model.KindHost || last.State != model.IncidentResolved || !p.hostFailed(last.Subject.ID) {
		return false
	}
	for _, id := range p.protectedOn(last.Subject.ID) {
		if !slices.ContainsFunc(last.Steps, func(st model.Step) bool { return st.Server == id }) {
			return true
		}
	}
	return false
}

func (p *planner) clusterPolicy(cluster string) string {
	for _, c := range p.in.Clusters {
		if c.Name == cluster {
			return c.Policy
		}
	}
	return "default"
}

func (p *planner) hostFailed(host string) bool {
	v, ok := p.in.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]
	return ok && v.Failed
}

// protectedOn lists the protected servers that the cloud places on host.
func (p *planner) protectedOn(host string) []string {
	var ids []string
	for id, s := range p.in.Servers {
		if _, ok := p.member[id]; ok && s.Host == host {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// hostPolicy merges the policies of the servers on a host, strictest first.
func (p *planner) hostPolicy(servers []string) model.Policy {
	var names []string
	for _, id := range servers {
		names = append(names, p.clusterPolicy(p.member[id]))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return model.DefaultPolicy()
	}
	merged := p.policy(names[0])
	if len(names) > 1 {
		merged.FaultRules = mergeHostDead(merged, names[1:], p.policy)
	}
	for _, n := range names[1:] {
		pol := p.policy(n)
		merged.Name += "+" + n
		merged.StepTimeout = min(merged.StepTimeout, pol.StepTimeout)
		merged.Deadline = min(merged.Deadline, pol.Deadline)
		merged.MaxAttempts = min(merged.MaxAttempts, pol.MaxAttempts)
		merged.ServiceFenceOnly = merged.ServiceFenceOnly && pol.ServiceFenceOnly
		merged.FenceProof = strictestProof(merged.Proof(), pol.Proof())
		merged.FabricFence = merged.FabricFence || pol.FabricFence
		merged.EvacuateOnHostFailure = merged.EvacuateOnHostFailure && pol.EvacuateOnHostFailure
		// A host holding servers of a dry-run policy is never acted on: fencing it
		// would touch those servers too.
		merged.DryRun = merged.DryRun || pol.DryRun
	}
	return merged
}

func (p *planner) policyOf(inc *model.Incident) model.Policy {
	if inc.Subject.Kind == model.KindHost {
		return p.hostPolicy(p.evacuees(inc))
	}
	return p.policy(inc.Policy)
}

// unsettledWait starts the reason of an incident that would close but waits for a
// step's unknown outcome to be settled (change).
const unsettledWait = "waiting: whether "

func (p *planner) change(inc *model.Incident, state model.IncidentState, reason string) {
	if st := inc.Unsettled(); st != nil && state.Closed() {
		if state == model.IncidentEscalated && st.Action == model.ActFence {
			// A fence whose answer was lost is settled by reading its BMC, and a BMC
			// that stays silent never settles it: the incident waited for ever (the
			// fabric test with its BMC stopped). An escalation takes no action, so it
			// need not wait; the operator is told what is not known.
			reason += fmt.Sprintf("; whether fence %s was taken is not known (its BMC has not answered since): the host may be powered off", st.Host)
		} else {
			// A step whose outcome is unknown (its answer lost, or Vigil stopped after
			// its intent) is settled with the cloud first: closed now, the journal would
			// never learn whether it was taken (seeds 7463, 8174).
			state, reason = model.IncidentWaiting, fmt.Sprintf("%s%s %s was taken is not known yet (the cloud is asked first); then: %s",
				unsettledWait, st.Action, st.Subject().ID, reason)
		}
	}
	if inc.State == state && inc.Reason == reason {
		return
	}
	inc.State, inc.Reason = state, reason
	p.out.Changes = append(p.out.Changes, Change{Incident: inc.ID, State: state, Reason: reason})
	if inc.Subject.Kind == model.KindHost && state == model.IncidentResolved && p.hostIncident[inc.Subject.ID] == inc.ID {
		// A host incident resolved in this round (its host came back, or its servers
		// run elsewhere) recovers nothing more: a server incident on that host must not
		// be superseded by it, or its failure would count as answered. (One that
		// escalates does answer its servers: its reason names them.)
		delete(p.hostIncident, inc.Subject.ID)
	}
}

func (p *planner) finish(inc *model.Incident, st *model.Step, state model.StepState, errText string, retryable bool) {
	st.State, st.Error, st.Finished, st.Retryable = state, errText, p.in.Now, retryable
	p.out.Updates = append(p.out.Updates, StepUpdate{Incident: inc.ID, Step: st.ID, State: state, Error: errText, Retryable: retryable})
}

// take plans a step if the concurrency budget allows; false means the incident waits.
func (p *planner) take(inc *model.Incident, st model.Step) bool {
	if p.budget <= 0 {
		p.change(inc, model.IncidentWaiting, fmt.Sprintf(
			"waiting: %d steps already in flight (limits.max_concurrent)", p.in.Limits.MaxConcurrent))
		return false
	}
	dry := p.dryRun(inc)
	if dry {
		if w := lastWould(inc.Steps); w != nil {
			// Dry run: the step it would have taken is journaled; the incident holds
			// there (nothing was done, so nothing further can be decided).
			p.change(inc, model.IncidentWaiting, dryRunReason(*w))
			return false
		}
	}
	p.budget--
	if p.in.Sabotage.DropEvidence {
		st.Rule = ""
	}
	preset := st.State // a skipped step is a conclusion journaled as such, not an action
	st.Incident, st.State, st.Planned = inc.ID, model.StepPlanned, p.in.Now
	if dry && preset != model.StepSkipped {
		st.State = model.StepWould
	}
	st.Seq = len(inc.Steps) + 1
	inc.Steps = append(inc.Steps, st)
	p.out.Steps = append(p.out.Steps, st)
	if st.State == model.StepWould {
		p.change(inc, model.IncidentWaiting, dryRunReason(st))
	} else if inc.State == model.IncidentWaiting {
		p.change(inc, model.IncidentOpen, "")
	}
	return true
}

// activeSince reports whether the server has been seen ACTIVE and idle, on a host
// other than notOn (if set), by an observation made no earlier than t.
func (p *planner) activeSince(id string, t time.Time, notOn string) bool {
	s, ok := p.in.Servers[id]
	if !ok || s.Status != model.StatusActive || s.TaskState != "" || (notOn != "" && s.Host == notOn) {
		return false
	}
	v, ok := p.in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}]
	return ok && v.Server == string(model.ServerHealthy) && !v.Since.Before(t)
}

func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 5)
	return min(d, 30*time.Second)
}

func attempts(steps []model.Step, match func(model.Step) bool) int {
	n := 0
	for _, st := range steps {
		if st.State != model.StepSkipped && st.State != model.StepPlanned && match(st) {
			n++
		}
	}
	return n
}
