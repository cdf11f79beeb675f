package sim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Host agents: one per host, heartbeating to the controller over two paths
// (management, storage), hearing the agents of its segment's other hosts, and
// reporting what only the host sees of its guests (libvirt domains, the guest agent
// ping, an app probe). They observe; they never act.

// AgentConfig tunes the host agents.
type AgentConfig struct {
	// Interval between heartbeats (and between probes of a guest).
	Interval time.Duration
	// Threshold is the failed probes a policy wants before it judges a guest (the
	// agent reports it with each probe).
	Threshold int
	// Probed says which servers' guests are probed (the protected ones: Vigil's
	// orders name their probes); the others are only listed.
	Probed func(id string) bool
	// Seed draws the network's delays and losses.
	Seed uint64
}

// Paths an agent heartbeats over, in order.
var agentPaths = []string{model.PathManagement, model.PathStorage}

// guest is what the host sees of a server's guest and Nova does not.
type guest struct {
	hung      time.Time // the kernel froze (zero: it did not)
	appFailed time.Time // the app stopped answering (zero: it did not)
	// appNeedsRebuild: a reboot does not bring the app back (its disk is bad).
	appNeedsRebuild bool
	dom             domFault
	syncAt          time.Time // when Nova's power sync will see the dead domain (zero: never)
}

// domFault is a domain that died on a host (the guest is not running).
type domFault struct {
	host, state, reason string
}

// Cures: what each action does to a guest's troubles.
func cureSoftReboot(s *server) {
	// An ACPI reboot: a frozen kernel ignores it, the app restarts unless its disk is bad.
	if s.guest.hung.IsZero() && !s.guest.appNeedsRebuild {
		s.guest.appFailed = time.Time{}
	}
}

func cureHardReboot(s *server) {
	s.guest.hung = time.Time{}
	if !s.guest.appNeedsRebuild {
		s.guest.appFailed = time.Time{}
	}
}

func cureNew(s *server) { // rebuild, evacuate: a new guest from its image
	s.guest.hung, s.guest.appFailed, s.guest.appNeedsRebuild = time.Time{}, time.Time{}, false
}

func cured(do, cure func(*server)) func(*server) {
	return func(s *server) { do(s); cure(s) }
}

type agents struct {
	cfg    AgentConfig
	rng    *rand.Rand
	byHost map[string]*agent
	// inflight: beats sent, not yet arrived, by arrival time.
	inflight []arrival
}

type since struct {
	key string // state/reason
	at  time.Time
}

type arrival struct {
	at   time.Time
	beat model.AgentBeat
}

type agent struct {
	running bool
	dead    bool // the process died (the host runs on)
	boot    int
	seq     map[string]uint64
	next    time.Time // next periodic beat
	beats   int
	pathCut map[string]bool
	// noisy: until then, beats are delayed up to 5 intervals and 30 % are lost.
	noisy     time.Time
	last      map[string]model.Domain // the domains of the last report
	since     map[string]since        // when each domain entered its state (agent clock)
	lastHeard map[string]time.Time    // peer -> when this agent last heard it
}

// EnableAgents starts an agent on every host.
func (c *Cloud) EnableAgents(cfg AgentConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 3
	}
	c.agents = &agents{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0xa9e7)), byHost: map[string]*agent{}}
	for _, name := range c.hostNames {
		c.agents.byHost[name] = &agent{pathCut: map[string]bool{}}
	}
}

// AgentsOn reports whether the hosts run agents.
func (c *Cloud) AgentsOn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents != nil
}

func (c *Cloud) agentLocked(op, name string) (*agent, error) {
	if c.agents == nil {
		return nil, fmt.Errorf("%s %s: no agents in this cloud", op, name)
	}
	a, ok := c.agents.byHost[name]
	if !ok {
		return nil, fmt.Errorf("%s %s: no such host", op, name)
	}
	return a, nil
}

// KillAgent stops (true) a host's agent process, or starts it again (a new boot);
// the host and its guests run on either way.
func (c *Cloud) KillAgent(name string, dead bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, err := c.agentLocked("kill agent", name)
	if err != nil {
		return err
	}
	a.dead = dead
	return nil
}

// CutPath cuts (or restores) one of a host's agent paths to the controller; with
// nova, Nova's compute reports of the host go too (they share the management network).
func (c *Cloud) CutPath(name, path string, cut, nova bool) error {
	c.mu.Lock()
	a, err := c.agentLocked("cut path", name)
	if err == nil {
		a.pathCut[path] = cut
	}
	c.mu.Unlock()
	if err != nil || !nova {
		return err
	}
	return c.withHost(name, func(h *host) { h.isolated = cut })
}

// SetBeatNoise makes a host's beats late (up to 5 intervals) and lost (30 %) until
// the given time.
func (c *Cloud) SetBeatNoise(name string, until time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, err := c.agentLocked("beat noise", name)
	if err != nil {
		return err
	}
	a.noisy = until
	return nil
}

// HangGuest freezes a running guest's kernel: Nova ACTIVE, its domain running, its
// guest agent silent (and its apps with it).
func (c *Cloud) HangGuest(id string) error {
	return c.withGuest("hang", id, func(s *server) { s.guest.hung = c.now() })
}

// FailApp makes the app in a running guest fail; needsRebuild: only a rebuild (or
// an evacuation) brings it back.
func (c *Cloud) FailApp(id string, needsRebuild bool) error {
	return c.withGuest("fail app", id, func(s *server) {
		s.guest.appFailed, s.guest.appNeedsRebuild = c.now(), needsRebuild
	})
}

// PanicGuest: the guest kernel panics (crashed/panicked at once on its host); Nova
// sees it not running only at its power sync, after syncAfter (0: never).
func (c *Cloud) PanicGuest(id string, syncAfter time.Duration) error {
	return c.killDomain("panic", id, model.DomainCrashed, model.ReasonPanicked, syncAfter)
}

// CrashQemu: the guest's qemu dies (shutoff/crashed on its host); Nova says ACTIVE
// until its power sync, after syncAfter (0: never).
func (c *Cloud) CrashQemu(id string, syncAfter time.Duration) error {
	return c.killDomain("crash qemu", id, model.DomainShutoff, model.ReasonCrashed, syncAfter)
}

func (c *Cloud) killDomain(op, id, state, reason string, syncAfter time.Duration) error {
	return c.withGuest(op, id, func(s *server) {
		s.guest.dom = domFault{host: s.host, state: state, reason: reason}
		s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == s.host })
		if syncAfter > 0 {
			s.guest.syncAt = c.now().Add(syncAfter)
			if c.syncs == nil {
				c.syncs = map[string]bool{}
			}
			c.syncs[s.id] = true
		}
	})
}

// withGuest changes the guest of a server that is ACTIVE and running on its host,
// with no task (a guest fault needs a running guest). Nova sees nothing: no touch.
func (c *Cloud) withGuest(op, id string, f func(*server)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted || s.status != model.StatusActive || s.task != "" || !slices.Contains(s.copies, s.host) {
		return fmt.Errorf("%s %s: no guest running", op, id)
	}
	f(s)
	return nil
}

// powerSyncLocked is Nova's sync_power_state: an ACTIVE server whose guest died
// behind its back becomes SHUTOFF (its owner's intent still on).
func (c *Cloud) powerSyncLocked() {
	if len(c.syncs) == 0 {
		return
	}
	now := c.now()
	for _, id := range slices.Sorted(maps.Keys(c.syncs)) {
		s := c.servers[id]
		if now.Before(s.guest.syncAt) {
			continue
		}
		delete(c.syncs, id)
		s.guest.syncAt = time.Time{}
		if !s.deleted && s.status == model.StatusActive && s.task == "" && len(s.copies) == 0 {
			s.status = model.StatusShutoff
			c.touchLocked(s)
		}
	}
}

// GuestTrouble says what is wrong with a server's guest that Nova may not show
// ("" when nothing is): hung, app failed, panicked, qemu crashed.
func (c *Cloud) GuestTrouble(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return ""
	}
	g := s.guest
	switch {
	case g.dom.state != "" && len(s.copies) == 0:
		return "domain " + g.dom.state + "/" + g.dom.reason
	case !g.hung.IsZero() && len(s.copies) > 0:
		return "guest hung"
	case !g.appFailed.IsZero() && len(s.copies) > 0:
		return "app failed"
	}
	return ""
}

// agentUp: the host's agent process runs.
func (c *Cloud) agentUpLocked(name string) bool {
	h, a := c.hosts[name], c.agents.byHost[name]
	return h.power == model.PowerOn && !a.dead
}

// pathUpLocked: the host's agent path reaches the controller (in truth; its beats
// may still be late or lost).
func (c *Cloud) pathUpLocked(name, path string) bool {
	h, a := c.hosts[name], c.agents.byHost[name]
	return c.agentUpLocked(name) && !h.cut && !h.ctrlCut && !a.pathCut[path]
}

// hearsLocked: p's agent hears q's (both run, same segment, neither cut off every network).
func (c *Cloud) hearsLocked(p, q string) bool {
	hp, hq := c.hosts[p], c.hosts[q]
	return p != q && hp.segment == hq.segment && c.agentUpLocked(p) && c.agentUpLocked(q) && !hp.cut && !hq.cut
}

// HeardOn names the independent ways the controller could hear a live host's agent
// right now, in truth: its paths that are up, and "peer X" for each peer that hears
// it and reaches the controller itself. Nil without agents or when none.
func (c *Cloud) HeardOn(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	if c.agents == nil || c.hosts[name] == nil {
		return nil
	}
	var out []string
	for _, p := range agentPaths {
		if c.pathUpLocked(name, p) {
			out = append(out, p)
		}
	}
	for _, q := range c.hostNames {
		if c.hearsLocked(q, name) && slices.ContainsFunc(agentPaths, func(p string) bool { return c.pathUpLocked(q, p) }) {
			out = append(out, "peer "+q)
		}
	}
	return out
}

// Beats runs every agent up to now (its periodic beats, and a report at once on
// every change it sees) and returns the beats that reached the controller by now,
// in arrival order. At is the arrival on the cloud's clock: the receiver restamps it
// on its own.
func (c *Cloud) Beats() []model.AgentBeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	if c.agents == nil {
		return nil
	}
	now := c.now()
	ag := c.agents
	c.near = c.nearIndexLocked()
	defer func() { c.near = nil }()
	for _, name := range c.hostNames {
		a := ag.byHost[name]
		up := c.agentUpLocked(name)
		switch {
		case up && !a.running:
			// The agent starts (host powered on, or its process restarted): a new boot.
			a.running, a.boot, a.seq, a.next, a.beats = true, a.boot+1, map[string]uint64{}, now, 0
			a.last, a.since, a.lastHeard = nil, map[string]since{}, map[string]time.Time{}
		case !up:
			a.running = false
			continue
		}
		for !a.next.After(now) {
			c.beatLocked(name, a, a.next, false)
			a.next = a.next.Add(ag.cfg.Interval)
		}
		// A change between beats is reported at once (libvirt's events, a probe's turn).
		if doms := c.domainsLocked(name, a, now); !sameDomains(a.last, doms) {
			c.beatLocked(name, a, now, true)
		}
	}
	var out []model.AgentBeat
	slices.SortStableFunc(ag.inflight, func(x, y arrival) int { return x.at.Compare(y.at) })
	for len(ag.inflight) > 0 && !ag.inflight[0].at.After(now) {
		b := ag.inflight[0].beat
		b.At = ag.inflight[0].at
		out = append(out, b)
		ag.inflight = ag.inflight[1:]
	}
	return out
}

// NextBeat is when the next periodic beat of any running agent is due (zero without agents).
func (c *Cloud) NextBeat() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agents == nil {
		return time.Time{}
	}
	var next time.Time
	for _, a := range c.agents.byHost {
		if a.running && (next.IsZero() || a.next.Before(next)) {
			next = a.next
		}
	}
	return next
}

// beatLocked sends one beat of a's on every path at t: with a report when its
// domains changed (with the events between) or every third beat.
func (c *Cloud) beatLocked(name string, a *agent, t time.Time, changed bool) {
	ag := c.agents
	a.beats++
	for _, q := range c.peerCandidatesLocked(name) {
		if c.hearsLocked(name, q) {
			a.lastHeard[q] = t
		}
	}
	var peers map[string]time.Duration
	if len(a.lastHeard) > 0 {
		peers = map[string]time.Duration{}
		for q, at := range a.lastHeard {
			peers[q] = t.Sub(at)
		}
	}
	doms := c.domainsLocked(name, a, t)
	var rep *model.HostReport
	if changed || a.beats%3 == 1 || !sameDomains(a.last, doms) {
		rep = &model.HostReport{Domains: doms, Events: domainEvents(a.last, doms, t)}
		a.last = maps.Collect(func(yield func(string, model.Domain) bool) {
			for _, d := range doms {
				if !yield(d.UUID, d) {
					return
				}
			}
		})
	}
	for _, p := range agentPaths {
		a.seq[p]++
		b := model.AgentBeat{Host: name, Path: p, Boot: fmt.Sprintf("%s-boot%d", name, a.boot), Seq: a.seq[p],
			Sent: t, Interval: ag.cfg.Interval, Peers: peers, Report: rep}
		// Every draw is made whether or not the path is up, so that a cut path does not
		// shift the noise of the others.
		lost, delay := ag.rng.Float64(), time.Duration(ag.rng.Int64N(int64(50*time.Millisecond)))
		long := time.Duration(ag.rng.Int64N(int64(5 * ag.cfg.Interval)))
		if !c.pathUpLocked(name, p) {
			continue // no buffering: a heartbeat is now or never
		}
		if t.Before(a.noisy) {
			if lost < 0.3 {
				continue
			}
			delay = long
		}
		ag.inflight = append(ag.inflight, arrival{at: t.Add(delay), beat: b})
	}
}

// domainsLocked is what the host's libvirt and probes show at t: every domain on
// the host, running or dead, by server ID.
func (c *Cloud) domainsLocked(name string, a *agent, t time.Time) []model.Domain {
	cfg := c.agents.cfg
	var out []model.Domain
	for _, id := range c.serversNearLocked(name) {
		s := c.servers[id]
		if s.deleted || s.host != name && s.guest.dom.host != name && !slices.Contains(s.copies, name) {
			continue
		}
		d := model.Domain{UUID: id, Name: s.name}
		switch {
		case slices.Contains(s.copies, name):
			d.State, d.Reason = model.DomainRunning, model.ReasonBooted
			if cfg.Probed != nil && cfg.Probed(id) {
				ga := probe("guest-agent", s.guest.hung, t, cfg)
				app := probe("app", minTime(s.guest.hung, s.guest.appFailed), t, cfg)
				d.GuestAgent, d.Apps = &ga, []model.Probe{app}
			}
		case s.guest.dom.host == name:
			d.State, d.Reason = s.guest.dom.state, s.guest.dom.reason
		case s.host == name:
			d.State, d.Reason = model.DomainShutoff, model.ReasonDestroyed
			if s.intent == model.IntentOff {
				d.Reason = model.ReasonShutdown
			} else if s.status == model.StatusError {
				d.Reason = model.ReasonCrashed
			}
		default:
			continue
		}
		key := d.State + "/" + d.Reason
		if e, ok := a.since[id]; !ok || e.key != key {
			a.since[id] = since{key: key, at: t}
		}
		d.Since = a.since[id].at
		out = append(out, d)
	}
	return out
}

// probe is a probe's state at t of a guest that stopped answering at failedAt (zero:
// it answers), tried every interval.
func probe(name string, failedAt, t time.Time, cfg AgentConfig) model.Probe {
	p := model.Probe{Name: name, OK: true, Threshold: cfg.Threshold, Last: t}
	if !failedAt.IsZero() {
		p.OK, p.Failures, p.Error = false, 1+int(t.Sub(failedAt)/cfg.Interval), "no answer within the timeout"
	}
	return p
}

func minTime(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// sameDomains: nothing a report would show changed (states, probes' verdicts and counts).
func sameDomains(last map[string]model.Domain, doms []model.Domain) bool {
	if len(last) != len(doms) {
		return false
	}
	for _, d := range doms {
		o, ok := last[d.UUID]
		if !ok || o.State != d.State || o.Reason != d.Reason || !sameProbes(o, d) {
			return false
		}
	}
	return true
}

func sameProbes(a, b model.Domain) bool {
	if (a.GuestAgent == nil) != (b.GuestAgent == nil) || len(a.Apps) != len(b.Apps) {
		return false
	}
	if a.GuestAgent != nil && (a.GuestAgent.OK != b.GuestAgent.OK || a.GuestAgent.Failures != b.GuestAgent.Failures) {
		return false
	}
	for i := range a.Apps {
		if a.Apps[i].OK != b.Apps[i].OK || a.Apps[i].Failures != b.Apps[i].Failures {
			return false
		}
	}
	return true
}

// domainEvents are libvirt's lifecycle events between two reports.
func domainEvents(last map[string]model.Domain, doms []model.Domain, t time.Time) []model.DomainEvent {
	var out []model.DomainEvent
	seen := map[string]bool{}
	for _, d := range doms {
		seen[d.UUID] = true
		o, ok := last[d.UUID]
		if ok && o.State == d.State && o.Reason == d.Reason {
			continue
		}
		ev := model.DomainEvent{UUID: d.UUID, Name: d.Name, At: t, Detail: d.Reason}
		switch d.State {
		case model.DomainRunning:
			ev.Event = "started"
		case model.DomainCrashed:
			ev.Event = "crashed"
		case model.DomainShutoff:
			ev.Event = "stopped"
		default:
			ev.Event = d.State
		}
		if last == nil && d.State == model.DomainRunning {
			continue // the agent's first look: nothing happened
		}
		out = append(out, ev)
	}
	for _, id := range slices.Sorted(maps.Keys(last)) {
		if !seen[id] {
			out = append(out, model.DomainEvent{UUID: id, Name: last[id].Name, At: t, Event: "undefined"})
		}
	}
	return out
}

// nearIndex is what one round of beats looks up per host, built once per round:
// scanning every host for peers and every server for domains, for each of 10,000
// hosts, made a round quadratic.
type nearIndex struct {
	bySegment map[string][]string // hosts, sorted
	onHost    map[string][]string // the servers assigned to, dead on or running on a host, in creation order
}

func (c *Cloud) nearIndexLocked() *nearIndex {
	ix := &nearIndex{bySegment: map[string][]string{}, onHost: map[string][]string{}}
	for _, name := range c.hostNames {
		seg := c.hosts[name].segment
		ix.bySegment[seg] = append(ix.bySegment[seg], name)
	}
	for _, id := range c.ids {
		s := c.servers[id]
		if s.deleted {
			continue
		}
		near := []string{s.host}
		if d := s.guest.dom.host; d != "" && !slices.Contains(near, d) {
			near = append(near, d)
		}
		for _, h := range s.copies {
			if !slices.Contains(near, h) {
				near = append(near, h)
			}
		}
		for _, h := range near {
			ix.onHost[h] = append(ix.onHost[h], id)
		}
	}
	return ix
}

// peerCandidatesLocked: the hosts that may hear name (its segment's; every host
// outside a round of beats).
func (c *Cloud) peerCandidatesLocked(name string) []string {
	if c.near == nil {
		return c.hostNames
	}
	return c.near.bySegment[c.hosts[name].segment]
}

// serversNearLocked: the servers that may have a domain on name (every server
// outside a round of beats).
func (c *Cloud) serversNearLocked(name string) []string {
	if c.near == nil {
		return c.ids
	}
	return c.near.onHost[name]
}
