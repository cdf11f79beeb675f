package detect

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// The signals beyond the compute API: host agents' heartbeats on each path, what
// they hear of their peers, and external monitors' reports. Each is one signal; a
// host is judged on all of them (hostVerdict), and a silence alone never fails it.

// Rules of the verdicts these signals lead to.
const (
	// RuleHostHeardOnPath: Nova says its compute is down, but the host's agent is
	// heard on one of its paths: isolated, never fenced.
	RuleHostHeardOnPath = "host-heard-on-another-path"
	// RuleHostHeardByPeers: no path of its own reaches Vigil, but peer agents (heard
	// themselves) hear it now: isolated, never fenced.
	RuleHostHeardByPeers = "host-heard-by-peers"
	// RuleHostPartitioned: Vigil lost many agent hosts at once while they heard each
	// other (or lost every agent): Vigil is cut off; nothing is concluded.
	RuleHostPartitioned = "controller-partitioned"
	// RuleHostBMCOff: dead with proof: its BMC says off after it was on, and nothing
	// answers for it (agent paths, peers, Nova's heartbeats).
	RuleHostBMCOff = "host-bmc-off"
	// RuleHostMonitorOffline: an external monitor (masakari-hostmonitor) says the
	// host's cluster node is offline: suspect, never failed on that alone.
	RuleHostMonitorOffline = "host-monitor-offline"
	// RuleAgentHeard and RuleAgentSilent judge a host's agent itself (KindAgent).
	RuleAgentHeard  = "agent-heard"
	RuleAgentSilent = "agent-silent"
)

// Defaults of the controller-partition check.
const (
	DefaultPartitionMinHosts = 3
	DefaultPartitionFraction = 0.5
	DefaultPartitionWindow   = 5 * time.Second
)

// peerFreshIntervals: a peer's word that it hears a host holds for this many of the
// reporter's intervals after the peer last heard it.
const peerFreshIntervals = 3

type pathKey struct{ host, path string }

// peerView is what one agent said it hears of its peers, in its last beat.
type peerView struct {
	at       time.Time // arrival of the beat that said it (Vigil's clock)
	interval time.Duration
	peers    map[string]time.Duration
}

// reportView is an agent's last report of its host, with when it arrived.
type reportView struct {
	rep *model.HostReport
	at  time.Time
	// events are the recent lifecycle events of the host's reports, the latest's and
	// those of the reports it replaced (a panic, then the destroy that follows it
	// 200 ms later, may come in two reports drained in one step), without repeats.
	events []model.DomainEvent
}

// keptEvents: how many of a host's recent domain events are kept across reports.
const keptEvents = 64

// withEvents returns the recent events of old followed by those of rep not already
// among them, at most keptEvents.
func withEvents(old []model.DomainEvent, rep *model.HostReport) []model.DomainEvent {
	out := slices.Clone(old)
	for _, ev := range rep.Events {
		if !slices.Contains(out, ev) {
			out = append(out, ev)
		}
	}
	if len(out) > keptEvents {
		out = out[len(out)-keptEvents:]
	}
	return out
}

// foldAgents takes in the heartbeats of an observation.
func (d *Detector) foldAgents(now time.Time, beats []model.AgentBeat) {
	for _, b := range beats {
		at := b.At
		if at.IsZero() {
			at = now
		}
		key := pathKey{b.Host, b.Path}
		p, ok := d.paths[key]
		if !ok {
			p = &path{}
			d.paths[key] = p
			d.hostPaths[b.Host] = append(d.hostPaths[b.Host], b.Path)
			slices.Sort(d.hostPaths[b.Host])
		}
		if !p.accept(b, at) {
			continue // a duplicate: it proves nothing new
		}
		if first, ok := d.firstBeat[b.Host]; !ok || at.Before(first) {
			d.firstBeat[b.Host] = at
		}
		if pv, ok := d.peers[b.Host]; !ok || !at.Before(pv.at) {
			d.setPeers(b.Host, peerView{at: at, interval: p.expected(), peers: maps.Clone(b.Peers)})
		}
		if b.Report != nil {
			if rv, ok := d.reports[b.Host]; !ok || !at.Before(rv.at) {
				d.reports[b.Host] = reportView{rep: b.Report, at: at, events: withEvents(rv.events, b.Report)}
				d.runningDirty = true
				d.dirtyHost(b.Host)
				for _, dom := range b.Report.Domains {
					d.dirty[dom.UUID] = true
				}
				for _, ev := range b.Report.Events {
					d.dirty[ev.UUID] = true
				}
			}
		}
	}
}

// setPeers records a reporter's peer view and keeps the index of who hears whom.
func (d *Detector) setPeers(reporter string, pv peerView) {
	if old, ok := d.peers[reporter]; ok && samePeers(old.peers, pv.peers) {
		// The usual beat: the same peers as last time, only their ages moved. The
		// index of who hears whom stands; rebuilding it at every beat of every host
		// was most of the detector's time with 10,000 hosts.
		d.peers[reporter] = pv
		return
	}
	for peer := range d.peers[reporter].peers {
		delete(d.heardBy[peer], reporter)
	}
	d.peers[reporter] = pv
	for peer := range pv.peers {
		if peer == reporter {
			continue
		}
		if d.heardBy[peer] == nil {
			d.heardBy[peer] = map[string]bool{}
		}
		d.heardBy[peer][reporter] = true
	}
}

// samePeers: a and b name the same peers.
func samePeers(a, b map[string]time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			return false
		}
	}
	return true
}

// foldMonitors takes in external monitors' reports (masakari-monitors).
func (d *Detector) foldMonitors(now time.Time, reports []model.MonitorReport) {
	for _, r := range reports {
		if r.At.IsZero() {
			r.At = now
		}
		switch strings.ToUpper(r.Type) {
		case "COMPUTE_HOST":
			switch strings.ToUpper(r.Event) {
			case "STOPPED":
				d.hostMonitor[r.Host] = r
			case "STARTED":
				delete(d.hostMonitor, r.Host)
			}
		case "PROCESS":
			key := r.Host + "/" + r.Payload["process_name"]
			switch strings.ToUpper(r.Event) {
			case "STOPPED":
				d.processDown[key] = r
			case "STARTED":
				delete(d.processDown, key)
			}
		case "VM":
			if r.Server != "" {
				d.vmReports[r.Server] = r
				d.dirty[r.Server] = true
			}
		}
	}
}

// hasAgent reports whether a host's agent was ever heard.
func (d *Detector) hasAgent(host string) bool { return len(d.hostPaths[host]) > 0 }

// agentInterval is the heartbeat interval of a host's agent (the longest of its paths).
func (d *Detector) agentInterval(host string) time.Duration {
	iv := time.Duration(0)
	for _, name := range d.hostPaths[host] {
		iv = max(iv, d.paths[pathKey{host, name}].expected())
	}
	if iv == 0 {
		return time.Second
	}
	return iv
}

// heardPaths lists the host's paths that are not silent at now, and a line of
// evidence per path.
func (d *Detector) heardPaths(now time.Time, host string) (heard, ev []string) {
	for _, name := range d.hostPaths[host] {
		p := d.paths[pathKey{host, name}]
		if st, _ := p.state(now, d.cfg.PhiSilent); st != PathSilent {
			heard = append(heard, name)
		}
		ev = append(ev, p.describe(name, now, d.cfg.PhiSilent))
	}
	return heard, ev
}

func (d *Detector) anyPathHeard(now time.Time, host string) bool {
	for _, name := range d.hostPaths[host] {
		if st, _ := d.paths[pathKey{host, name}].state(now, d.cfg.PhiSilent); st != PathSilent {
			return true
		}
	}
	return false
}

// lastBeat is the arrival of the host's newest beat on any path.
func (d *Detector) lastBeat(host string) (last time.Time, on string) {
	for _, name := range d.hostPaths[host] {
		if p := d.paths[pathKey{host, name}]; p.last.After(last) {
			last, on = p.last, name
		}
	}
	return last, on
}

// allSilentAt is when the last of the host's paths went (or goes) silent.
func (d *Detector) allSilentAt(host string) time.Time {
	var at time.Time
	for _, name := range d.hostPaths[host] {
		if s := d.paths[pathKey{host, name}].silentAt(d.cfg.PhiSilent); s.After(at) {
			at = s
		}
	}
	return at
}

// peersHearing lists the peers that hear the host now: each is heard itself, and
// its word is fresh (the age it gave plus the time since it gave it is within a few
// of its intervals). A silent reporter's word is not trusted: it may be cut off with
// the host, or dead.
func (d *Detector) peersHearing(now time.Time, host string) (hearers, ev []string) {
	for _, r := range slices.Sorted(maps.Keys(d.heardBy[host])) {
		pv := d.peers[r]
		age := pv.peers[host] + now.Sub(pv.at)
		if age >= peerFreshIntervals*pv.interval || !d.anyPathHeard(now, r) {
			continue
		}
		hearers = append(hearers, r)
		ev = append(ev, fmt.Sprintf("peer %s (heard itself) heard it %s ago (its beat at %s)", r, age.Round(time.Millisecond), pv.at.Format("15:04:05.000")))
	}
	return hearers, ev
}

// peerHeardAfter names a peer that heard the host after t (by its own word, on
// Vigil's clock: the beat's arrival minus the age it gave), if any.
func (d *Detector) peerHeardAfter(host string, t time.Time) (string, time.Time) {
	for _, r := range slices.Sorted(maps.Keys(d.heardBy[host])) {
		pv := d.peers[r]
		if at := pv.at.Add(-pv.peers[host]); at.After(t) {
			return r, at
		}
	}
	return "", time.Time{}
}

// checkPartition latches the agent hosts Vigil lost at once (rule
// controller-partitioned): at least PartitionMinHosts and PartitionFraction of the
// agent hosts went silent on every path within PartitionWindow, and their last peer
// reports say they heard each other; or Vigil hears no agent at all. A latched host
// stays partitioned until it is heard again, or until too few are still silent for
// that to be a partition: nothing is concluded meanwhile.
func (d *Detector) checkPartition(now time.Time) {
	hosts := slices.Sorted(maps.Keys(d.hostPaths))
	heard := 0
	var cand []string
	for _, h := range hosts {
		if d.anyPathHeard(now, h) {
			heard++
			if _, ok := d.partitioned[h]; ok {
				delete(d.partitioned, h)
				d.dirtyHost(h)
			}
			continue
		}
		if _, ok := d.partitioned[h]; ok {
			continue
		}
		if !d.allSilentAt(h).Before(now.Add(-d.cfg.PartitionWindow)) {
			cand = append(cand, h)
		}
	}
	if len(cand) == 0 && len(d.partitioned) == 0 {
		return
	}
	group := map[string]bool{}
	for _, h := range cand {
		group[h] = true
	}
	for h := range d.partitioned {
		group[h] = true
	}
	n, total := len(group), len(hosts)
	many := n >= d.cfg.PartitionMinHosts && float64(n) >= d.cfg.PartitionFraction*float64(total)
	if !many && !(heard == 0 && n >= 2) {
		// Too few are silent now for Vigil to be the one cut off: the episode is
		// over (the others are heard again), and a host still silent is judged on
		// its own signals, its BMC's and its peers' (sim seed 96, two replicas: a
		// host that died during the episode stayed "partitioned" for ever, its
		// servers never recovered).
		for h := range d.partitioned {
			delete(d.partitioned, h)
			d.dirtyHost(h)
		}
		return
	}
	mutual := 0
	for h := range group {
		for r := range d.heardBy[h] {
			if pv := d.peers[r]; group[r] && pv.peers[h] < peerFreshIntervals*pv.interval {
				mutual++
				break
			}
		}
	}
	if heard > 0 && 2*mutual < n {
		return // they did not hear each other: each is judged on its own
	}
	why := fmt.Sprintf("Vigil lost %d of %d agent hosts at once (silent on every path within %s)", n, total, d.cfg.PartitionWindow)
	if heard == 0 {
		why += ", and hears no agent at all"
	}
	why += fmt.Sprintf("; by their last peer reports %d of them heard another of them: Vigil is more likely cut off than they are dead; nothing is concluded until they are heard again", mutual)
	for _, h := range cand {
		d.partitioned[h] = partition{since: now, why: why}
		d.dirtyHost(h)
	}
}

type partition struct {
	since time.Time
	why   string
}

// novaBeatAfter reports whether the host's compute wrote a heartbeat after the BMC
// first said off (on the cloud's clock when known).
func (d *Detector) novaBeatAfter(name string) bool {
	b := d.beats[name]
	after := b.advanced && b.at.After(d.offSinceVigil[name])
	if since := d.offSince[name]; !since.IsZero() && !b.genuine.IsZero() {
		after = b.advanced && b.genuine.After(since)
	}
	return after
}

// deadByBMC (rule host-bmc-off): the host is dead with proof. Its trusted BMC says
// off, after it was seen on (or the host heard alive before); no agent path has
// carried a beat for two intervals since the off, no peer heard it since, and its
// compute wrote no heartbeat since. Only for a host with an agent.
func (d *Detector) deadByBMC(now time.Time, h model.Host) ([]string, bool) {
	off, ok := d.offSinceVigil[h.Name]
	if h.Power != model.PowerOff || !ok || d.view.FenceDoubt[h.Name] != "" {
		return nil, false
	}
	first, heard := d.firstBeat[h.Name]
	if !d.powerOnSeen[h.Name] && !(heard && first.Before(off)) && !(d.beats[h.Name].advanced && d.beats[h.Name].at.Before(off)) {
		return nil, false // never seen on: a BMC that always said off proves nothing
	}
	ev := []string{fmt.Sprintf("BMC reports power off since %s, after it was on", off.Format("15:04:05.000"))}
	if d.hasAgent(h.Name) {
		// Two signals agree: the BMC says off, and the agent has been silent on every
		// path for two intervals, its last beat before the off. The BMC is read
		// only once the agent went silent, so this holds at that very read: no
		// further wait (a beat after the off would make the BMC doubted instead).
		iv := d.agentInterval(h.Name)
		last, on := d.lastBeat(h.Name)
		if now.Sub(last) < 2*iv || last.After(off) {
			return nil, false
		}
		// And they tell of one event: the agent fell silent about when the power went
		// off (its BMC is read as soon as it is silent). An agent dead for minutes
		// before its BMC says off is two failures, not one (sim seed 2984: a dead
		// agent, then a BMC lying "off" while the compute reported): Nova's word then
		// decides, its grace and the fence doubts with it.
		if gap := off.Sub(last); gap > deadBMCGap*iv {
			return nil, false
		}
		ev = append(ev, fmt.Sprintf("no agent beat on any path since %s (on %s), %s: at least 2 intervals of %s, and none since the BMC said off",
			last.Format("15:04:05.000"), on, now.Sub(last).Round(time.Millisecond), iv))
	} else {
		return nil, false // a host without an agent keeps its grace (see hostVerdict)
	}
	if r, at := d.peerHeardAfter(h.Name, off); r != "" {
		_ = at
		return nil, false
	}
	if d.novaBeatAfter(h.Name) {
		return nil, false
	}
	_, hb := d.heartbeatAge(now, h.Name)
	ev = append(ev, "no peer heard it since the off", "no compute heartbeat since the off ("+hb+")")
	return ev, true
}

// deadBMCGap: in intervals of the agent, how long before the BMC's first "off" its
// last beat may have come for the two to be one event (the BMC of a silent agent's
// host is read within about an interval of its suspicion at 2.5 intervals).
const deadBMCGap = 6

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// agentFenceDoubts: a BMC that says off while the host's agent is heard, or a peer
// hears it, after the off (plus one interval: a beat in flight) is wrong about that
// host, as one that says off while its compute reports.
func (d *Detector) agentFenceDoubts(doubt func(host, why string)) {
	for _, name := range slices.Sorted(maps.Keys(d.offSinceVigil)) {
		off := d.offSinceVigil[name]
		bound := off.Add(d.agentInterval(name))
		if last, on := d.lastBeat(name); last.After(bound) {
			doubt(name, fmt.Sprintf("the BMC of host %s says power off (since %s) while its agent is heard on path %s (beat at %s): the BMC entry does not match the host, or the BMC lies",
				name, off.Format("15:04:05.000"), on, last.Format("15:04:05.000")))
			continue
		}
		if r, at := d.peerHeardAfter(name, bound); r != "" {
			doubt(name, fmt.Sprintf("the BMC of host %s says power off (since %s) while peer %s heard it at %s: the BMC entry does not match the host, or the BMC lies",
				name, off.Format("15:04:05.000"), r, at.Format("15:04:05.000")))
		}
	}
}

// agentVerdicts judge each host's agent itself: up when heard, suspect when silent
// on every path. Never failed: a dead agent is not a dead host.
func (d *Detector) agentVerdicts(now time.Time) []model.Verdict {
	var out []model.Verdict
	for _, host := range slices.Sorted(maps.Keys(d.hostPaths)) {
		heard, ev := d.heardPaths(now, host)
		subj := model.Subject{Kind: model.KindAgent, ID: host}
		v := model.Verdict{Subject: subj, Host: string(model.HostUp), Rule: RuleAgentHeard, Evidence: ev}
		if len(heard) == 0 {
			v.Host, v.Rule = string(model.HostSuspect), RuleAgentSilent
			hv := d.view.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]
			v.Evidence = append(v.Evidence, fmt.Sprintf("the agent is silent on every path; its host is %s (%s): a dead agent is not a dead host", cmpOr(hv.Host, "not listed by the cloud"), hv.Rule))
		}
		if nv, ok := d.update(now, v); ok {
			out = append(out, nv)
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// refreshAgentHeard recomputes which agents are heard; a change re-judges the
// host's servers (their reports count only from a heard agent).
func (d *Detector) refreshAgentHeard(now time.Time) {
	for host := range d.hostPaths {
		h := d.anyPathHeard(now, host)
		if old, ok := d.agentHeard[host]; !ok || old != h {
			d.agentHeard[host] = h
			d.runningDirty = true
			d.dirtyHost(host)
		}
	}
	if !d.runningDirty {
		return
	}
	d.runningDirty = false
	running := map[string][]string{}
	for _, host := range slices.Sorted(maps.Keys(d.reports)) {
		if !d.agentHeard[host] {
			continue
		}
		for _, dom := range d.reports[host].rep.Domains {
			if dom.State == model.DomainRunning {
				running[dom.UUID] = append(running[dom.UUID], host)
			}
		}
	}
	for id := range running {
		if !slices.Equal(running[id], d.view.Running[id]) {
			d.dirty[id] = true
		}
	}
	for id := range d.view.Running {
		if _, ok := running[id]; !ok {
			d.dirty[id] = true
		}
	}
	d.view.Running = running
}

// withMonitors adds what external monitors say of a host to a verdict reached
// without them: a cluster node reported offline makes an up host suspect (one
// more signal, never a failure on its own); a stopped process is evidence.
func (d *Detector) withMonitors(v model.Verdict, host string) model.Verdict {
	for _, key := range slices.Sorted(maps.Keys(d.processDown)) {
		if r := d.processDown[key]; r.Host == host {
			v.Evidence = append(v.Evidence, fmt.Sprintf("monitor: process %s stopped on %s (notification %s at %s)", r.Payload["process_name"], host, r.ID, r.At.Format("15:04:05.000")))
		}
	}
	r, ok := d.hostMonitor[host]
	if !ok {
		return v
	}
	ev := fmt.Sprintf("monitor: host %s reported STOPPED (host_status %s, cluster_status %s; notification %s at %s)",
		host, r.Payload["host_status"], r.Payload["cluster_status"], r.ID, r.At.Format("15:04:05.000"))
	if v.Host != string(model.HostUp) {
		v.Evidence = append(v.Evidence, ev)
		return v
	}
	v.Host, v.Rule = string(model.HostSuspect), RuleHostMonitorOffline
	v.Evidence = append(v.Evidence, ev, "an external monitor's word makes the host suspect, never failed on its own")
	return v
}
