package agent

import (
	"sort"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// maxEvents bounds the events kept for a path that cannot deliver them (Vigil away
// for long): the oldest go first; the domains' states still say where they ended.
const maxEvents = 1000

// state is what the agent knows and has yet to tell, shared by its loops: the
// domains and probes (the report), the events not yet delivered on each path, the
// last orders and when each peer was last heard.
type state struct {
	mu       sync.Mutex
	host     string
	boot     string
	interval time.Duration // the agent's own, until orders say another

	orders  model.AgentOrders
	libvirt string
	domains map[string]model.Domain // by UUID, without probes
	probes  map[string]*domainProbes

	key     string // StateKey of the last rendered report
	version uint64 // bumped when key changes
	events  []model.DomainEvent
	evBase  uint64 // absolute index of events[0]
	paths   map[string]*pathState
	heard   map[string]time.Time
	peers   []string
	changed chan struct{} // closed (and replaced) on every change worth an immediate beat
}

type domainProbes struct {
	guestAgent *model.Probe
	apps       map[string]model.Probe
}

type pathState struct {
	seq          uint64
	ackedVersion uint64
	ackedEvents  uint64 // absolute index: events before it were delivered on this path
	sinceReport  int
}

// sentMark is what a beat carried, acknowledged when Vigil answered 200.
type sentMark struct {
	report  bool
	version uint64
	events  uint64
}

func newState(host, boot string, interval time.Duration, peers []Peer) *state {
	s := &state{host: host, boot: boot, interval: interval,
		domains: map[string]model.Domain{}, probes: map[string]*domainProbes{},
		paths: map[string]*pathState{}, heard: map[string]time.Time{}, changed: make(chan struct{})}
	for _, p := range peers {
		s.peers = append(s.peers, p.Name)
	}
	return s
}

// changes returns a channel closed at the next change worth an immediate beat.
func (s *state) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// touched re-renders the report and, if it changed or events arrived, wakes every
// path. Called with mu held.
func (s *state) touched(newEvents bool) {
	key := s.reportLocked(0).StateKey()
	if key != s.key {
		s.key = key
		s.version++
	} else if !newEvents {
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *state) setLibvirt(errText string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.libvirt = errText
	s.touched(false)
}

// setDomains replaces the listing (a full list from libvirt). A domain keeps its
// Since while its state and reason hold.
func (s *state) setDomains(list []model.Domain, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]model.Domain, len(list))
	for _, d := range list {
		next[d.UUID] = s.since(d, now)
	}
	s.domains = next
	s.dropStaleProbes()
	s.touched(false)
}

// update records one domain's new state (nil: undefined, gone) with the events
// that told of it, in one change: the beat it wakes carries both.
func (s *state) update(uuid string, d *model.Domain, events []model.DomainEvent, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == nil {
		delete(s.domains, uuid)
	} else {
		s.domains[uuid] = s.since(*d, now)
	}
	s.dropStaleProbes()
	s.appendEvents(events)
	s.touched(len(events) > 0)
}

// record adds events whose domain's state could not be read.
func (s *state) record(events []model.DomainEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendEvents(events)
	s.touched(len(events) > 0)
}

func (s *state) appendEvents(events []model.DomainEvent) {
	s.events = append(s.events, events...)
	if over := len(s.events) - maxEvents; over > 0 {
		s.events = append([]model.DomainEvent(nil), s.events[over:]...)
		s.evBase += uint64(over)
	}
}

func (s *state) since(d model.Domain, now time.Time) model.Domain {
	if old, ok := s.domains[d.UUID]; ok && old.State == d.State && old.Reason == d.Reason && !old.Since.IsZero() {
		d.Since = old.Since
	} else if d.Since.IsZero() {
		d.Since = now
	}
	return d
}

// dropStaleProbes forgets the probes of a domain that no longer runs or is no
// longer ordered probed: a guest restarted is judged afresh. Called with mu held.
func (s *state) dropStaleProbes() {
	for uuid := range s.probes {
		d, ok := s.domains[uuid]
		_, ordered := s.orders.Probes[uuid]
		if !ok || d.State != model.DomainRunning || !ordered {
			delete(s.probes, uuid)
		}
	}
}

// probed records one try of a probe: its consecutive failures climb until one
// succeeds.
func (s *state) probed(uuid string, spec model.ProbeSpec, guestAgent bool, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.domains[uuid]; !ok || d.State != model.DomainRunning {
		return // it stopped while the probe ran: its next run is judged afresh
	}
	dp := s.probes[uuid]
	if dp == nil {
		dp = &domainProbes{apps: map[string]model.Probe{}}
		s.probes[uuid] = dp
	}
	var prev model.Probe
	if guestAgent {
		if dp.guestAgent != nil {
			prev = *dp.guestAgent
		}
	} else {
		prev = dp.apps[spec.Name]
	}
	p := model.Probe{Name: spec.Name, OK: err == nil, Threshold: spec.Failures, Last: now}
	if err != nil {
		p.Failures = prev.Failures + 1
		p.Error = err.Error()
	}
	if guestAgent {
		dp.guestAgent = &p
	} else {
		dp.apps[spec.Name] = p
	}
	s.touched(false)
}

func (s *state) setOrders(o model.AgentOrders) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = o
	s.dropStaleProbes()
	s.touched(false)
}

func (s *state) currentOrders() model.AgentOrders {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders
}

// beatInterval is Vigil's interval when its orders name one, else the agent's own.
func (s *state) beatInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orders.Interval > 0 {
		return s.orders.Interval
	}
	return s.interval
}

// running returns the running domains by UUID (their names, for libvirt calls).
func (s *state) running() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for uuid, d := range s.domains {
		if d.State == model.DomainRunning {
			out[uuid] = d.Name
		}
	}
	return out
}

func (s *state) heardPeer(name string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heard[name] = at
}

// reportLocked renders the report with the events from absolute index from on.
func (s *state) reportLocked(from uint64) *model.HostReport {
	rep := &model.HostReport{Libvirt: s.libvirt, Domains: make([]model.Domain, 0, len(s.domains))}
	for uuid, d := range s.domains {
		if dp := s.probes[uuid]; dp != nil {
			if dp.guestAgent != nil {
				p := *dp.guestAgent
				d.GuestAgent = &p
			}
			for _, p := range dp.apps {
				d.Apps = append(d.Apps, p)
			}
			sort.Slice(d.Apps, func(i, j int) bool { return d.Apps[i].Name < d.Apps[j].Name })
		}
		rep.Domains = append(rep.Domains, d)
	}
	sort.Slice(rep.Domains, func(i, j int) bool {
		if rep.Domains[i].Name != rep.Domains[j].Name {
			return rep.Domains[i].Name < rep.Domains[j].Name
		}
		return rep.Domains[i].UUID < rep.Domains[j].UUID
	})
	if from < s.evBase {
		from = s.evBase
	}
	if i := int(from - s.evBase); i < len(s.events) {
		rep.Events = append([]model.DomainEvent(nil), s.events[i:]...)
	}
	return rep
}

// nextBeat builds a path's next beat. The report rides along when it changed since
// the path last delivered one, when events wait for the path, or every reportEvery
// beats; withReport is false for a host without libvirt (nothing to report).
func (s *state) nextBeat(path string, now time.Time, reportEvery int, withReport bool) (model.AgentBeat, sentMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.paths[path]
	if ps == nil {
		ps = &pathState{}
		s.paths[path] = ps
	}
	ps.seq++
	interval := s.interval
	if s.orders.Interval > 0 {
		interval = s.orders.Interval
	}
	b := model.AgentBeat{Host: s.host, Path: path, Boot: s.boot, Seq: ps.seq, Sent: now, Interval: interval}
	for _, name := range s.peers {
		if at, ok := s.heard[name]; ok {
			if b.Peers == nil {
				b.Peers = map[string]time.Duration{}
			}
			b.Peers[name] = max(now.Sub(at), 0)
		}
	}
	end := s.evBase + uint64(len(s.events))
	mark := sentMark{version: s.version, events: end}
	due := ps.sinceReport+1 >= reportEvery || ps.ackedVersion != s.version || ps.ackedEvents < end || ps.seq == 1
	if withReport && due {
		b.Report = s.reportLocked(ps.ackedEvents)
		mark.report = true
	}
	return b, mark
}

// delivered acknowledges what a beat carried (Vigil answered 200).
func (s *state) delivered(path string, m sentMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.paths[path]
	if !m.report {
		ps.sinceReport++
		return
	}
	ps.sinceReport = 0
	ps.ackedVersion = m.version
	ps.ackedEvents = max(ps.ackedEvents, m.events)
}
