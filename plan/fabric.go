package plan

import (
	"fmt"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// Fabric says which halves of the fabric fence the cloud offers Vigil: a network
// service whose ports it can set admin down (Neutron), a block-storage service
// whose attachments it can cut (Cinder). A cloud without Cinder has no volume for
// an old copy to write to. With Configured false Vigil was given no fabric at all
// (a libvirt cloud, a deployment that does not use it): no fabric step is planned
// nor journaled.
type Fabric struct {
	Configured bool
	Ports      bool
	Volumes    bool
}

// Rule IDs of the fabric fence.
const (
	ruleFabricProof   = "fence-proof-fabric"
	ruleFabricCut     = "fabric-cut"
	ruleFabricLift    = "fabric-lift"
	ruleFabricMissing = "fabric-missing"
)

// fabricProof (rule fence-proof-fabric) says why the fabric fence is the host's
// proof ("" when it is not): the policy accepts it (fence_proof: bmc-or-fabric),
// the cloud can cut ports, and no BMC can give the proof: none is configured, or
// the one configured does not answer (its power could not be read, or the last
// fence got no answer). A BMC that answers is always used instead; one that is not
// trusted (FenceDoubt) escalates as before.
func (p *planner) fabricProof(inc *model.Incident, h model.Host, pol model.Policy) string {
	name := inc.Subject.ID
	if pol.Proof() != model.FenceProofBMCOrFabric || !p.in.Fabric.Ports || p.in.FenceDoubt[name] != "" {
		return ""
	}
	if !p.in.CanFence[name] {
		return fmt.Sprintf("%s: host %s has no BMC and policy %s has fence_proof bmc-or-fabric: each server's ports are set admin down and its volumes cut from host %s, confirmed by reading them back, before it is evacuated",
			ruleFabricProof, name, pol.Name, name)
	}
	if why := bmcSilent(inc, h); why != "" {
		return fmt.Sprintf("%s: the BMC of host %s does not answer (%s) and policy %s has fence_proof bmc-or-fabric: each server's ports are set admin down and its volumes cut from host %s, confirmed by reading them back, before it is evacuated",
			ruleFabricProof, name, why, pol.Name, name)
	}
	return ""
}

// bmcSilent says how a configured BMC showed it does not answer ("" if it did not).
func bmcSilent(inc *model.Incident, h model.Host) string {
	if last := lastOf(inc.Steps, model.ActFence, ""); last != nil && last.State == model.StepFailed && last.Retryable {
		return "its fence got no answer: " + last.Error
	}
	if h.Power == model.PowerUnknown {
		return "its power could not be read"
	}
	return ""
}

// proofHint completes an escalation of a host with no fence proof: which policy
// setting would let the fabric fence stand in.
func proofHint(pol model.Policy, fab Fabric) string {
	switch {
	case pol.Proof() == model.FenceProofBMC:
		return fmt.Sprintf(" (policy %s has fence_proof bmc: only its BMC proves the host off; fence_proof bmc-or-fabric would accept the fabric fence, every port down and every volume cut)", pol.Name)
	case pol.Proof() == model.FenceProofBMCOrFabric && !fab.Ports:
		return fmt.Sprintf(" (policy %s has fence_proof bmc-or-fabric, but Vigil has no network service (Neutron) to cut ports through: configure the cloud's network endpoint)", pol.Name)
	}
	return ""
}

// fabricMissing journals, once per incident, that the fabric fence asked for by
// fabric_fence cannot be taken because the cloud offers no such service.
func (p *planner) fabricMissing(inc *model.Incident, pol model.Policy) {
	if !p.in.Fabric.Configured || p.in.Fabric.Ports && p.in.Fabric.Volumes {
		return
	}
	for _, st := range inc.Steps {
		if st.State == model.StepSkipped && strings.HasPrefix(st.Rule, ruleFabricMissing) {
			return
		}
	}
	var missing []string
	act := model.ActPortsDown
	if !p.in.Fabric.Ports {
		missing = append(missing, "no network service (Neutron): the old copies are not cut from the network")
	} else {
		act = model.ActDetachVols
	}
	if !p.in.Fabric.Volumes {
		missing = append(missing, "no block-storage service (Cinder): there is no volume attachment to cut")
	}
	if p.take(inc, model.Step{Action: act, Host: inc.Subject.ID, State: model.StepSkipped,
		Rule: fmt.Sprintf("%s: policy %s asks for the fabric fence (fabric_fence), but the cloud offers Vigil %s", ruleFabricMissing, pol.Name, strings.Join(missing, "; "))}) {
		p.skipLast(inc)
	}
}

// fabricCut (rule fabric-cut) takes server id's fabric fence before its evacuation
// from host: its ports admin down and its attachments to host cut, both planned in
// the same round (the executor runs them in that order, each confirmed by reading
// it back), so the evacuation follows in the very next round: one round, not two,
// is added to a host's recovery. It returns done when the evacuation may go on:
// both confirmed, or, where the fabric is extra safety only (the BMC proved the
// host off), tried once: a cut that failed is journaled with its reason, named in
// the evacuation's rule (note), and never blocks nor escalates the evacuation. It
// returns stop when the incident was escalated: the fabric is the proof and
// cannot be had.
func (p *planner) fabricCut(inc *model.Incident, pol model.Policy, host, id string, proof bool) (done, stop bool, note string) {
	if !p.in.Fabric.Configured {
		return true, false, ""
	}
	done = true
	var failed []string
	for _, act := range []model.Action{model.ActPortsDown, model.ActDetachVols} {
		if act == model.ActPortsDown && !p.in.Fabric.Ports || act == model.ActDetachVols && !p.in.Fabric.Volumes {
			continue // journaled by fabricMissing; with no Cinder there is no volume to cut
		}
		if succeeded(inc.Steps, act, id) {
			continue
		}
		last := lastOf(inc.Steps, act, id)
		if last != nil && last.State == model.StepFailed {
			if !proof {
				// Extra safety: its failure is journaled, the BMC's proof holds.
				failed = append(failed, fmt.Sprintf("%s failed: %s", act, last.Error))
				continue
			}
			if !last.Retryable {
				p.change(inc, model.IncidentEscalated, fmt.Sprintf("no fence proof for server %s: %s of %s on host %s refused: %s; policy %s accepts only the BMC or the whole fabric fence, so nothing is evacuated: an operator must fix it (or the BMC) and decide%s",
					id, act, id, host, last.Error, pol.Name, p.fabricNote(inc)))
				return false, true, ""
			}
		}
		why := "the old copy on " + host + " may still run: cut it from the network (ports admin_state_up=false) before a new copy starts"
		if act == model.ActDetachVols {
			why = "the old copy on " + host + " may still run: delete its volume attachments to " + host + " (Cinder) so it cannot write once a new copy starts"
		}
		if proof {
			why += " (this is the fence proof)"
		} else {
			why += " (extra safety: the BMC proved the host off; a failure does not hold the evacuation back)"
		}
		if !p.retryOrEscalate(inc, pol, model.Step{Action: act, Server: id, Host: host, Timeout: pol.StepTimeout,
			Rule: fmt.Sprintf("%s: %s", ruleFabricCut, why)}, string(act)+" of "+id+" failed: no evacuation without the fabric fence") {
			return false, true, ""
		}
		done = false
	}
	if done && len(failed) > 0 {
		note = fmt.Sprintf("; %s: its fabric fence is incomplete (%s); the BMC's proof that host %s is off holds, so the evacuation goes on", ruleFabricCut, strings.Join(failed, "; "), host)
	}
	return done, false, note
}

// fabricLift (rule fabric-lift) plans ports-up for each server of the incident
// whose ports Vigil set down and has not set up again, once the server runs ACTIVE
// on another host (or, with all, for every such server: the host came back and
// its servers run on it). It returns how many still wait for their ports, and
// false in ok when the incident was escalated.
func (p *planner) fabricLift(inc *model.Incident, pol model.Policy, all bool) (waiting int, ok bool) {
	seen := map[string]bool{}
	for _, st := range inc.Steps {
		id := st.Server
		if st.Action != model.ActPortsDown || !mayHaveCut(st) || seen[id] {
			continue
		}
		seen[id] = true
		if down, up := lastOf(inc.Steps, model.ActPortsDown, id), lastOf(inc.Steps, model.ActPortsUp, id); up != nil && up.State == model.StepSucceeded && up.Seq > down.Seq {
			continue
		}
		if _, exists := p.in.Servers[id]; !exists {
			continue // deleted: its ports went with it
		}
		if !all && !p.activeSince(id, inc.ForeignTime(&st, st.Finished, p.in.Now), inc.Subject.ID) {
			if s := p.in.Servers[id]; s.Host != "" && s.Host != inc.Subject.ID && !inFlight(inc.Steps, id) {
				// It left the host but does not run yet where it went (an evacuation
				// that landed in ERROR: its own incident repairs it there). The ports
				// this incident set down are still this incident's to lift, so it
				// stays open until then, or escalates naming them at its deadline
				// (sim seed 164 of issue 15: it resolved, a reboot brought the server
				// back ACTIVE on its new host, and nobody lifted its ports).
				waiting++
				p.change(inc, model.IncidentWaiting, fmt.Sprintf("waiting: %s: server %s left host %s but is %s on %s (its own incident answers it): its ports, set down by Vigil, go up once it runs ACTIVE there",
					ruleFabricLift, id, inc.Subject.ID, s.Status, s.Host))
			}
			continue // not moved yet: the evacuation loop answers for it
		}
		waiting++
		if inFlight(inc.Steps, id) {
			continue
		}
		why := fmt.Sprintf("server %s runs ACTIVE on %s: its ports, set down while its old copy on %s could run, go up again", id, p.in.Servers[id].Host, inc.Subject.ID)
		if all {
			why = fmt.Sprintf("host %s is not to be evacuated after all: server %s's ports, set down for its evacuation, go up again", inc.Subject.ID, id)
		}
		if !p.retryOrEscalate(inc, pol, model.Step{Action: model.ActPortsUp, Server: id, Host: inc.Subject.ID, Timeout: pol.StepTimeout,
			Rule: fmt.Sprintf("%s: %s", ruleFabricLift, why)}, "ports-up of "+id+" failed (its ports stay admin down: it cannot be reached)") {
			return waiting, false
		}
	}
	return waiting, true
}

// fabricNote names, for an escalation, the servers whose ports Vigil left down or
// whose volumes it cut: an operator must know what to restore.
func (p *planner) fabricNote(inc *model.Incident) string {
	var down, cut []string
	for _, st := range inc.Steps {
		if !mayHaveCut(st) {
			continue
		}
		switch st.Action {
		case model.ActPortsDown:
			if up := lastOf(inc.Steps, model.ActPortsUp, st.Server); up == nil || up.State != model.StepSucceeded || up.Seq < st.Seq {
				down = append(down, st.Server)
			}
		case model.ActDetachVols:
			cut = append(cut, st.Server)
		}
	}
	var b strings.Builder
	if len(down) > 0 {
		fmt.Fprintf(&b, "; the ports of %s were left admin down by Vigil", strings.Join(down, ", "))
	}
	if len(cut) > 0 {
		fmt.Fprintf(&b, "; the volume attachments of %s to host %s were cut from Cinder's side", strings.Join(cut, ", "), inc.Subject.ID)
	}
	return b.String()
}

// fabricGaps completes the resolution of a host whose fabric fence was extra
// safety only: which cuts failed and were not made up for (the BMC was the proof),
// so an operator knows the old copies were not cut off everywhere.
func fabricGaps(inc *model.Incident) string {
	var gaps []string
	seen := map[string]bool{}
	for _, st := range inc.Steps {
		if st.Action != model.ActPortsDown && st.Action != model.ActDetachVols || st.State != model.StepFailed || seen[string(st.Action)+" "+st.Server] {
			continue
		}
		if succeeded(inc.Steps, st.Action, st.Server) {
			continue
		}
		seen[string(st.Action)+" "+st.Server] = true
		gaps = append(gaps, fmt.Sprintf("%s of %s failed: %s", st.Action, st.Server, lastOf(inc.Steps, st.Action, st.Server).Error))
	}
	if len(gaps) == 0 {
		return ""
	}
	return fmt.Sprintf("; %s: the fabric fence, extra safety after the BMC's proof, is incomplete: %s", ruleFabricCut, strings.Join(gaps, "; "))
}

// strictestProof is the fence proof of two policies that share a host: the one
// that accepts less (bmc, then bmc-or-fabric, then service).
func strictestProof(a, b string) string {
	rank := map[string]int{model.FenceProofBMC: 0, model.FenceProofBMCOrFabric: 1, model.FenceProofService: 2}
	if rank[b] < rank[a] {
		return b
	}
	return a
}

// fabricProofKept is fabricProof, kept once journaled: a host whose servers began
// to be moved on the fabric proof stays on it, though its BMC answers again.
func (p *planner) fabricProofKept(inc *model.Incident, h model.Host, pol model.Policy) string {
	for _, st := range inc.Steps {
		if st.Action == model.ActFence && st.State == model.StepSkipped && strings.HasPrefix(st.Rule, ruleFabricProof) {
			return st.Rule
		}
	}
	return p.fabricProof(inc, h, pol)
}

// OnFabricProof reports whether the host incident journaled the fabric fence as
// its proof (its fence skipped under rule fence-proof-fabric): kept from then on
// (fabricProofKept), so its BMC's power decides nothing more for it.
func OnFabricProof(inc model.Incident) bool {
	return inc.Subject.Kind == model.KindHost && skippedWith(inc.Steps, model.ActFence, ruleFabricProof)
}

func skippedWith(steps []model.Step, a model.Action, rule string) bool {
	for _, st := range steps {
		if st.Action == a && st.State == model.StepSkipped && strings.HasPrefix(st.Rule, rule) {
			return true
		}
	}
	return false
}

// mayHaveCut: the step may have cut what it was for: confirmed, or failed for a
// passing reason (its answer or its read-back lost: the ports may be down all the
// same). Such ports are lifted like confirmed ones.
func mayHaveCut(st model.Step) bool {
	return st.State == model.StepSucceeded || st.State == model.StepFailed && st.Retryable
}
