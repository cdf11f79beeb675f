package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// identityEvery: how often the identity of every fence entry's BMC is read again.
const identityEvery = 10 * time.Minute

// readBMCs asks the BMCs for their power state: every tick for the hosts being
// fenced (a fence is proof only while the power stays off) and for the hosts that
// look suspect (a power loss is proof of death), every PowerEvery for
// every other fenceable host (a BMC that says off while its host reports is
// misconfigured: it must be known before it is needed). Identities are read at the
// first chance, every identityEvery, and at every tick for the hosts that look down
// or are being fenced.
func (e *Engine) readBMCs(ctx context.Context, now time.Time, hosts []model.Host) (power map[string]model.Power, ident, identErr map[string]string) {
	if e.cfg.Fencer == nil {
		return nil, nil, nil
	}
	e.mu.RLock()
	fencing := map[string]bool{}
	for _, inc := range e.open {
		for _, st := range inc.Steps {
			if st.Action == model.ActFence && st.State != model.StepSkipped {
				fencing[st.Host] = true
				break
			}
		}
	}
	// A host that looks down may be fenced soon: its BMC's identity is read at every
	// reconcile until then, so a fence entry rewired since the last full read is
	// caught before it is used.
	// Its power too: a host whose agent went silent, or that looks suspect, may have
	// lost its power, and a BMC that says so (and was on) is the fastest proof there
	// is: it is read at every reconcile until the host is judged.
	candidate := map[string]bool{}
	onFabric := e.onFabricProof()
	for name := range e.det.View().Hosts {
		if e.mayHaveLostPower(name) && !onFabric[name] {
			candidate[name] = true
		}
	}
	// And the hosts Vigil migrates servers off (a drain, an isolated host's move):
	// a migration needs its source alive, and its BMC is the one word on its power
	// that does not wait for a heartbeat to go stale (sim seed 512 of issue 15:
	// drained 2 s after it lost its power, while Nova still said up). Not a host
	// on the fabric proof: its BMC is silent, and each read would wait out its
	// timeout in every round of the recovery (it is read every PowerEvery).
	for _, inc := range e.open {
		if inc.Subject.Kind == model.KindDrain || inc.Subject.Kind == model.KindHost && !onFabric[inc.Subject.ID] {
			candidate[inc.Subject.ID] = true
		}
	}
	if hosts == nil { // a reconcile on signals: the hosts as last listed
		for _, name := range slices.Sorted(maps.Keys(e.det.View().Hosts)) {
			hosts = append(hosts, e.det.View().Hosts[name])
		}
	}
	e.mu.RUnlock()
	var all []string
	for _, h := range hosts {
		if e.cfg.Fencer.CanFence(h.Name) {
			all = append(all, h.Name)
		}
	}
	slices.Sort(all)

	everyone := e.lastPowerAll.IsZero() || now.Sub(e.lastPowerAll) >= e.cfg.PowerEvery
	var powerHosts []string
	for _, h := range all {
		if everyone || fencing[h] || candidate[h] {
			powerHosts = append(powerHosts, h)
		}
	}
	for h := range fencing { // listed or not: its proof is at stake
		if !slices.Contains(all, h) && e.cfg.Fencer.CanFence(h) {
			powerHosts = append(powerHosts, h)
		}
	}
	if everyone {
		e.lastPowerAll = now
	}
	_, canIdent := e.cfg.Fencer.(cloud.Identifier)
	var identHosts []string
	if canIdent {
		refresh := e.lastIdentAll.IsZero() || now.Sub(e.lastIdentAll) >= identityEvery
		for _, h := range all {
			if _, known := e.identities[h]; refresh || !known && everyone || fencing[h] || candidate[h] {
				identHosts = append(identHosts, h)
			}
		}
		if refresh {
			e.lastIdentAll = now
		}
	}

	var answers map[string]identAnswer
	urgent := maps.Clone(fencing)
	maps.Copy(urgent, candidate)
	power, answers = e.bmc.read(ctx, e.cfg.Fencer, powerHosts, identHosts, urgent, e.cfg.BMCTimeout, e.cfg.BMCWait)
	ident, identErr = e.foldIdentities(answers)
	for h, id := range ident {
		e.identities[h] = id
	}
	for _, h := range identHosts {
		if _, answered := answers[h]; !answered && (fencing[h] || candidate[h]) {
			// Its read goes on past this reconcile (a silent BMC takes its whole
			// timeout): until it answers, the machine behind the entry is not
			// confirmed, and no fence goes through it. Without this, a fence was
			// tried on a BMC that could not even be identified, its outcome
			// unknown for as long as the BMC stayed silent (the fabric tests).
			e.unconfirmed[h] = fmt.Sprintf("its BMC has not answered the identity read within %s (the read goes on, bounded by %s)", e.cfg.BMCWait, e.cfg.BMCTimeout)
		}
	}
	if len(power) == 0 {
		power = nil
	}
	return power, ident, identErr
}

// mayHaveLostPower: the host is failed, suspect, or its agent went silent: its
// BMC's power is worth reading at every reconcile. The caller holds e.mu.
func (e *Engine) mayHaveLostPower(name string) bool {
	v := e.det.View().Verdicts[model.Subject{Kind: model.KindHost, ID: name}]
	av := e.det.View().Verdicts[model.Subject{Kind: model.KindAgent, ID: name}]
	return v.Failed || v.Host == string(model.HostSuspect) || av.Host == string(model.HostSuspect)
}

// hostGrace gives each host the grace of the policies of the protected servers on
// it: the longest. Fencing a host stops every server on it, so it is judged dead
// only when every policy that has a server there agrees it is.
func (e *Engine) hostGrace() map[string]time.Duration {
	// One pass over the members, in no particular order: a host's grace is the
	// longest of its servers' (a max), and a server's policy is its first
	// cluster's. Sorting 100,000 IDs at every reconcile was a quarter of the CPU
	// of a cloud that size.
	grace := map[string]time.Duration{}
	seen := map[string]bool{}
	view := e.det.View()
	for _, c := range e.clusters {
		pol, ok := e.cfg.Policies[c.Policy]
		if !ok {
			pol = e.cfg.Policies["default"]
		}
		for _, id := range c.Members {
			if seen[id] {
				continue
			}
			seen[id] = true
			s, ok := view.Servers[id]
			if !ok || s.Host == "" {
				continue
			}
			if g, had := grace[s.Host]; !had || pol.HostDownGrace > g {
				grace[s.Host] = pol.HostDownGrace
			}
		}
	}
	return grace
}

// forcedByVigil names the hosts whose compute service Vigil itself forced down, by
// its journal (open incidents and the last closed one of each host).
func (e *Engine) forcedByVigil() map[string]time.Time {
	out := map[string]time.Time{}
	for _, inc := range e.open {
		markedDown(inc, out)
	}
	// The other replicas' force-downs too: a standby that took a bump of Nova's
	// updated_at for a heartbeat would judge the host back when it takes over.
	for _, inc := range e.others {
		markedDown(inc, out)
	}
	for _, inc := range e.lastClosed {
		markedDown(inc, out)
	}
	return out
}

// markedDown notes in out, per host, the latest moment a force-down of the
// incident's may have been written.
func markedDown(inc model.Incident, out map[string]time.Time) {
	for _, st := range inc.Steps {
		// Taken, or attempted with its outcome unknown (a lost answer, settled as
		// "no record" since Nova keeps none): the force-down may have been
		// written, and its bump of updated_at must not pass for a heartbeat.
		if st.Action == model.ActMarkDown && !st.Started.IsZero() && st.State != model.StepPlanned && st.State != model.StepWould &&
			(st.State != model.StepFailed || st.Retryable) {
			// The latest moment the force-down can have been written: its outcome
			// seen, else the call sent.
			last := out[st.Host]
			for _, t := range []time.Time{st.Started, st.Issued, st.Finished} {
				if t.After(last) {
					last = t
				}
			}
			out[st.Host] = last
		}
	}
}
