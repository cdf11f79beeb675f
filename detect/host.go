package detect

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// heartbeat follows one compute service's updated_at. Nova bumps updated_at at every
// report of a live compute, but also at every change an operator (or Vigil) makes to
// the service (forcing it down or up, disabling it): a bump that came with such a
// change is not a heartbeat.
type heartbeat struct {
	seen    time.Time // updated_at as last observed
	genuine time.Time // the last updated_at that was a heartbeat (the cloud's clock)
	at      time.Time // when Vigil observed that heartbeat (Vigil's clock)
	// advanced: Vigil saw updated_at advance as a heartbeat at least once (the
	// first value seen may be an operator's change); whileForced: the last such
	// heartbeat came while the service was forced down, before and after.
	advanced, whileForced bool
	forced, disabled      bool
	// forcedSeen: when Vigil first saw the service forced down (Vigil's clock; zero
	// when not seen arrive). A force-down is written with its bump of updated_at, so
	// the listing that first shows the flag shows the bump (or a later heartbeat).
	forcedSeen time.Time
}

// beat folds a host listing into its heartbeat.
func (d *Detector) beat(now time.Time, h, old model.Host, had bool) {
	b, ok := d.beats[h.Name]
	switch {
	case !ok || !had:
		b = heartbeat{seen: h.LastSeenUp, genuine: h.LastSeenUp, at: now}
		if d.writtenAfterOwnForceDown(now, h) {
			// First sight (Vigil restarted): the first value may be anyone's change, but
			// one written well after Vigil's own force-down is no bump of it: the
			// compute reported since (or someone changed the service: it counts, on
			// the side that fences and evacuates nobody by mistake).
			b.advanced, b.whileForced = true, true
		}
	case h.LastSeenUp.After(b.seen):
		// A bump that came with Vigil's own force-down is no heartbeat (the host was
		// fenced: it must not look alive on it). One that came with someone else's
		// change may hide a heartbeat written in the same interval (a long gap
		// between listings): it counts, on the side that fences nobody by mistake.
		if !d.mayBeOwnBump(now, h) || d.ownBumpSeen(h.Name, b) {
			b.genuine, b.at, b.advanced = h.LastSeenUp, now, true
			b.whileForced = h.ForcedDown
		}
		b.seen = h.LastSeenUp
	}
	if h.ForcedDown != b.forced && !h.LastSeenUp.After(old.LastSeenUp) {
		b.whileForced = false // a heartbeat from before the flag says nothing after it
	}
	switch {
	case !h.ForcedDown:
		b.forcedSeen = time.Time{}
	case !b.forced && ok && had:
		b.forcedSeen = now
	}
	b.forced, b.disabled = h.ForcedDown, h.Disabled
	d.beats[h.Name] = b
}

// ownBumpSeen reports whether the bump of Vigil's last force-down was already seen:
// the flag had arrived in an earlier listing (with its bump), and Vigil has not
// forced the service down again since (a repeat after a lost answer bumps it
// again). A later advance of updated_at is then no bump of Vigil's: the compute
// reported (seed 1834: a host powered on by an operator 20 s after Vigil's
// force-down, its BMC lying "off", must not wait out ownBumpSlack to look alive).
func (d *Detector) ownBumpSeen(name string, b heartbeat) bool {
	at, ok := d.forcedByVigil[name]
	return ok && b.forced && !b.forcedSeen.IsZero() && !at.After(b.forcedSeen)
}

// ownBumpSlack: how far after Vigil's own force-down (mapped onto the cloud's
// clock) an updated_at may lie and still be the bump of that force-down: the call's
// latency and the clocks' drift since. A heartbeat inside it is caught one listing
// later.
const ownBumpSlack = 30 * time.Second

// ownBumpEnd is the latest updated_at that may still be the bump of Vigil's own
// last force-down of h (its call's latency and the clocks' drift: ownBumpSlack). On
// the cloud's clock when it is known (Vigil's time mapped by the offset seen at this
// listing, cloud true), else on Vigil's, to compare with now. ok is false when Vigil
// has not forced h down or the flag is not set.
func (d *Detector) ownBumpEnd(now time.Time, h model.Host) (end time.Time, cloud, ok bool) {
	at, ok := d.forcedByVigil[h.Name]
	if !ok || at.IsZero() || !h.ForcedDown {
		return time.Time{}, false, false
	}
	if d.view.CloudAt.IsZero() || h.LastSeenUp.IsZero() {
		return at.Add(ownBumpSlack), false, true
	}
	offset := d.view.CloudAt.Sub(now) // the cloud's clock minus Vigil's
	return at.Add(offset + ownBumpSlack), true, true
}

// mayBeOwnBump: updated_at may be the bump of Vigil's own force-down (a first one,
// or a repeat on a service already forced down, e.g. after a lost answer).
func (d *Detector) mayBeOwnBump(now time.Time, h model.Host) bool {
	end, cloud, ok := d.ownBumpEnd(now, h)
	switch {
	case !ok:
		return false
	case !cloud:
		return !now.After(end)
	}
	return !h.LastSeenUp.After(end)
}

// writtenAfterOwnForceDown reports whether the host's updated_at, on the cloud's
// clock, was written well after Vigil last forced its service down: then it is no
// bump of Vigil's own change.
func (d *Detector) writtenAfterOwnForceDown(now time.Time, h model.Host) bool {
	end, cloud, ok := d.ownBumpEnd(now, h)
	return ok && cloud && h.LastSeenUp.After(end)
}

// heartbeatAge is how long ago the host's compute last reported: on the cloud's
// clock (its listing's time minus the heartbeat's updated_at) when both are known,
// else on Vigil's (since Vigil saw the heartbeat).
func (d *Detector) heartbeatAge(now time.Time, name string) (time.Duration, string) {
	b := d.beats[name]
	if !d.view.CloudAt.IsZero() && !b.genuine.IsZero() {
		age := max(d.view.CloudAt.Sub(b.genuine), 0)
		return age, fmt.Sprintf("last heartbeat at %s on the cloud's clock, %s before its listing",
			b.genuine.Format("15:04:05.000"), age.Round(time.Millisecond))
	}
	return now.Sub(b.at), fmt.Sprintf("last heartbeat seen by Vigil %s ago", now.Sub(b.at).Round(time.Millisecond))
}

// reportingForced reports whether a forced-down compute still sends heartbeats: one
// came after the flag was set, and the last is younger than service_down_time.
// Only heartbeats seen after the flag count: Vigil's own force-down of a dead host
// follows its last heartbeat by less than service_down_time.
func (d *Detector) reportingForced(now time.Time, name string) (bool, string) {
	age, ev := d.heartbeatAge(now, name)
	if !d.beats[name].whileForced {
		return false, ev + "; no heartbeat since it was forced down"
	}
	return age <= d.cfg.ServiceDownTime, ev
}

// reporting reports whether the host's compute is seen sending heartbeats now (not
// merely up by an operator's change to its service).
func (d *Detector) reporting(now time.Time, h model.Host) (bool, string) {
	if h.ForcedDown {
		return d.reportingForced(now, h.Name)
	}
	age, ev := d.heartbeatAge(now, h.Name)
	return h.Service == model.ServiceUp && d.beats[h.Name].advanced && age <= d.cfg.ServiceDownTime, ev
}

// hostHealth weighs every signal of a host (maintenance aside: hostVerdict), in
// this order: alive on any independent path (an agent path, a peer, Nova's
// compute); cut off from Vigil with many others (controller-partitioned); dead with
// proof (its BMC); else Nova's compute service past its grace. A host without an
// agent is judged as before agents existed.
func (d *Detector) hostHealth(now time.Time, h model.Host) model.Verdict {
	subj := model.Subject{Kind: model.KindHost, ID: h.Name}
	nova := d.novaVerdict(now, h)
	if d.hasAgent(h.Name) {
		heard, pathEv := d.heardPaths(now, h.Name)
		hearers, peerEv := d.peersHearing(now, h.Name)
		if len(heard) > 0 || len(hearers) > 0 {
			if nova.Host == string(model.HostUp) {
				nova.Evidence = append(append(nova.Evidence, pathEv...), peerEv...)
				return d.withMonitors(nova, h.Name)
			}
			rule, how := RuleHostHeardOnPath, fmt.Sprintf("its agent is heard on path %s", strings.Join(heard, ", "))
			if len(heard) == 0 {
				rule, how = RuleHostHeardByPeers, fmt.Sprintf("peers %s hear it", strings.Join(hearers, ", "))
			}
			ev := append([]string{fmt.Sprintf("Nova: %s (%s): %s", nova.Host, nova.Rule, strings.Join(nova.Evidence, "; ")),
				how + ": the host is alive, cut off from Nova (or its compute service stopped): isolated, never fenced"}, pathEv...)
			return d.withMonitors(model.Verdict{Subject: subj, Host: string(model.HostIsolated), Rule: rule, Evidence: append(ev, peerEv...)}, h.Name)
		}
		if p, ok := d.partitioned[h.Name]; ok {
			ev := append([]string{p.why, fmt.Sprintf("Nova meanwhile: %s (%s): %s", nova.Host, nova.Rule, strings.Join(nova.Evidence, "; "))}, pathEv...)
			return model.Verdict{Subject: subj, Host: string(model.HostPartitioned), Rule: RuleHostPartitioned, Evidence: ev, Since: p.since}
		}
		if ev, dead := d.deadByBMC(now, h); dead {
			return model.Verdict{Subject: subj, Host: string(model.HostDead), Failed: true, Rule: RuleHostBMCOff,
				Evidence: append(ev, pathEv...), Since: d.offSinceVigil[h.Name]}
		}
		nova.Evidence = append(nova.Evidence, "its agent is silent on every path, and no peer hears it")
		nova.Evidence = append(nova.Evidence, pathEv...)
		return d.withMonitors(nova, h.Name)
	}
	// A host without an agent keeps Nova's grace even with its BMC off: its policy's
	// host_down_grace is what its owner asked for (engine's TestPolicyGraceIsHonoured).
	if w := d.cfg.AgentWarmup; w > 0 && nova.Failed && now.Sub(d.started) < w {
		nova.Host, nova.Failed, nova.Rule = string(model.HostSuspect), false, RuleHostAgentWarmup
		nova.Evidence = append(nova.Evidence, fmt.Sprintf("Vigil started listening to the host agents at %s, %s ago: a host whose agent was not heard yet is judged failed only after %s",
			d.started.Format("15:04:05.000"), now.Sub(d.started).Round(time.Millisecond), w))
	}
	return d.withMonitors(nova, h.Name)
}

// novaVerdict judges a host by its compute service alone, as Nova shows it.
func (d *Detector) novaVerdict(now time.Time, h model.Host) model.Verdict {
	subj := model.Subject{Kind: model.KindHost, ID: h.Name}
	mk := func(health model.HostHealth, failed bool, rule string, ev ...string) model.Verdict {
		return model.Verdict{Subject: subj, Host: string(health), Failed: failed, Rule: rule, Evidence: ev}
	}
	if h.Service == model.ServiceUp {
		return mk(model.HostUp, false, RuleHostUp, "compute service up")
	}
	var ev []string
	since := now
	old, hadOld := d.lastHealth(subj)
	if h.ForcedDown {
		by := "not by Vigil (an operator or another tool)"
		if _, ok := d.forcedByVigil[h.Name]; ok {
			by = "by Vigil"
		}
		alive, hb := d.reportingForced(now, h.Name)
		if alive {
			// A flag is not a death: whoever forced it down, a compute that still
			// reports is alive, and is never fenced on the flag alone.
			return mk(model.HostUp, false, RuleHostForcedReporting,
				"compute service forced down "+by, hb+fmt.Sprintf(" (within service_down_time %s): the compute still reports, the host is alive", d.cfg.ServiceDownTime))
		}
		// Silent since its last heartbeat plus the service_down_time (as Nova would
		// have said down), expressed on Vigil's clock.
		age, _ := d.heartbeatAge(now, h.Name)
		since = now.Add(-(age - d.cfg.ServiceDownTime))
		if hadOld && (old.Rule == RuleHostForcedSilent || old.Rule == RuleHostSuspect || old.Rule == RuleHostDown) && old.Since.Before(since) {
			since = old.Since
		}
		ev = append(ev, "compute service forced down "+by, hb+fmt.Sprintf(": silent past service_down_time %s", d.cfg.ServiceDownTime))
	} else if hadOld && (old.Rule == RuleHostSuspect || old.Rule == RuleHostDown || old.Rule == RuleHostForcedSilent) {
		// Down: since when? A verdict already suspect or down keeps its start.
		since = old.Since
	}
	ev = append([]string{fmt.Sprintf("compute service down since %s", since.Format("15:04:05.000"))}, ev...)
	if h.Power == model.PowerOff {
		ev = append(ev, "BMC reports power off")
	}
	grace := d.graceOf(h.Name)
	down := now.Sub(since)
	if down < grace {
		v := mk(model.HostSuspect, false, RuleHostSuspect, append(ev,
			fmt.Sprintf("down for %s, less than the grace period %s", max(down, 0).Round(time.Millisecond), grace))...)
		v.Since = since
		return v
	}
	rule := RuleHostDown
	if h.ForcedDown {
		rule = RuleHostForcedSilent
	}
	v := mk(model.HostDown, true, rule, append(ev,
		fmt.Sprintf("down for %s, at least the grace period %s", down.Round(time.Millisecond), grace))...)
	v.Since = since
	return v
}

// checkFences records why a host's fence device must not be trusted. A doubt stays
// for the detector's life: a BMC that once contradicted its host is misconfigured
// until an operator fixes it (and restarts Vigil).
func (d *Detector) checkFences(now time.Time, obs model.Observation) {
	doubt := func(host, why string) {
		if _, ok := d.view.FenceDoubt[host]; !ok {
			d.view.FenceDoubt[host] = why
			d.dirtyHost(host)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(obs.IdentityErr)) {
		doubt(name, obs.IdentityErr[name])
	}
	for _, name := range slices.Sorted(maps.Keys(obs.Identity)) {
		id := obs.Identity[name]
		if id == "" {
			continue
		}
		if first, ok := d.identity[name]; ok && first != id {
			doubt(name, fmt.Sprintf("the BMC of host %s now identifies as %s, not %s as before: its fence entry reaches another machine", name, id, first))
			continue
		}
		d.identity[name] = id
	}
	byID := map[string][]string{}
	for name, id := range d.identity {
		byID[id] = append(byID[id], name)
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		if hosts := byID[id]; len(hosts) > 1 {
			slices.Sort(hosts)
			for _, h := range hosts {
				doubt(h, fmt.Sprintf("the fence entries of hosts %s reach one BMC (identity %s): powering off one would power off another", strings.Join(hosts, " and "), id))
			}
		}
	}
	// A BMC that says off while its host's compute goes on reporting is wrong about
	// that host (another host's BMC, or a lying one): it must never stand as a fence
	// proof. "Goes on reporting": a heartbeat written after the BMC first said off,
	// on the cloud's clock (a dead host's last heartbeats precede its power loss).
	for _, name := range slices.Sorted(maps.Keys(obs.Power)) {
		if obs.Power[name] != model.PowerOff {
			delete(d.offSince, name)
			delete(d.offSinceVigil, name)
			delete(d.offBeat, name)
			continue
		}
		if _, seen := d.offSinceVigil[name]; !seen {
			d.offSince[name], d.offSinceVigil[name] = d.view.CloudAt, now
		}
	}
	d.agentFenceDoubts(doubt)
	if obs.Hosts == nil {
		return
	}
	// Two heartbeats after it: a single bump of updated_at (an operator forcing the
	// service up) is not enough to call a BMC a liar.
	for _, name := range slices.Sorted(maps.Keys(d.offSinceVigil)) {
		h, ok := d.view.Hosts[name]
		if !ok {
			continue
		}
		b := d.beats[name]
		after := b.advanced && b.at.After(d.offSinceVigil[name])
		if since := d.offSince[name]; !since.IsZero() && !b.genuine.IsZero() {
			after = b.advanced && b.genuine.After(since)
		}
		if !after {
			continue
		}
		first, ok := d.offBeat[name]
		if !ok {
			d.offBeat[name] = b.genuine
			continue
		}
		if alive, hb := d.reporting(now, h); alive && b.genuine.After(first) {
			doubt(name, fmt.Sprintf("the BMC of host %s says power off while its compute service goes on reporting (%s): the BMC entry does not match the host, or the BMC lies", name, hb))
		}
	}
}

// SetFenceDoubts restores the doubts a previous owner journaled: a BMC that lied
// before a restart is not trusted after it.
func (d *Detector) SetFenceDoubts(doubts map[string]string) {
	for h, why := range doubts {
		d.view.FenceDoubt[h] = why
	}
}

// SetIdentities restores the BMC identities a previous owner read first: a fence
// entry rewired while Vigil was down is caught at the first read after it starts.
func (d *Detector) SetIdentities(ids map[string]string) {
	for h, id := range ids {
		d.identity[h] = id
	}
}

// Identity is the BMC identity every read of the host's BMC is compared with (""
// before the first).
func (d *Detector) Identity(host string) string { return d.identity[host] }

// ClearFenceDoubt trusts a host's fence device again (an operator fixed it): its
// BMC's identity as read from now on is the one to compare with.
func (d *Detector) ClearFenceDoubt(host string) {
	delete(d.view.FenceDoubt, host)
	delete(d.identity, host)
	delete(d.offSince, host)
	delete(d.offSinceVigil, host)
	delete(d.offBeat, host)
	d.dirtyHost(host)
}

// dirtyHost makes the host's verdict and its servers' be judged again.
func (d *Detector) dirtyHost(host string) {
	for id, s := range d.view.Servers {
		if s.Host == host {
			d.dirty[id] = true
		}
	}
}
