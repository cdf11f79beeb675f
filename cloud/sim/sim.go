package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Config tunes the simulated cloud.
type Config struct {
	// ActionLatency: how long after an accepted action its effect lands.
	ActionLatency time.Duration
	// ServiceDownTime: a compute that stopped reporting is "down" after this long
	// (Nova's service_down_time).
	ServiceDownTime time.Duration
	// ConductorDelay: how long an accepted evacuation keeps the source host (status
	// REBUILD, task rebuilding) before the conductor places it on its target. Zero
	// moves instance.host to the target when the API accepts the evacuation.
	ConductorDelay time.Duration
	// ResumeGuestsOnBoot is Nova's resume_guests_state_on_host_boot: a compute that
	// starts again restarts the guests of ACTIVE servers still assigned to it
	// (otherwise its power-state sync stops them: SHUTOFF).
	ResumeGuestsOnBoot bool
	// CleanupDelay: how long after it starts a compute takes to clean up the
	// servers evacuated from it (their 'done' evacuation records). Like Nova, a
	// force-up is refused while such records remain (gotcha 8 of the peer).
	CleanupDelay time.Duration
	// Notifications keeps a feed of server changes (see DrainNotifications).
	Notifications bool
	// CallLatency is spent in Sleep on every API call, when both are set.
	CallLatency time.Duration
	Sleep       func(time.Duration)
	// ErrorRate is the probability that any API call fails with ErrUnavailable,
	// drawn from a generator seeded with Seed.
	ErrorRate float64
	Seed      uint64
	// Latency slows every compute API call and pages server listings (latency.go);
	// nil: instant answers, one page.
	Latency *Latency
	// OnCall is told of every API call with its answer (nil or the error it gets),
	// under the cloud's lock: it must not call the cloud (the demo's metrics).
	OnCall func(op string, err error)
}

// DefaultConfig is a fast cloud for the demo and tests.
func DefaultConfig() Config {
	return Config{ActionLatency: 2 * time.Second, ServiceDownTime: 6 * time.Second, ConductorDelay: time.Second}
}

// ErrAnswerLost marks a call the cloud carried out but whose answer never came back
// (a timeout): the caller sees cloud.ErrUnavailable and cannot tell it from a call
// that never arrived.
var ErrAnswerLost = errors.New("no answer within the timeout (the request may have been carried out)")

type host struct {
	name, segment string
	capacity      int
	power         model.Power // the truth
	computeAlive  bool        // the nova-compute process
	isolated      bool        // alive, but its reports do not reach the controller
	// How it is cut off, for its agent's paths (agents.go): cut, every network
	// (IsolateHost: peers too); ctrlCut, only the controller's side (CutFromController:
	// its segment's peers still hear it).
	cut, ctrlCut bool
	forcedDown   bool
	disabled     bool
	cleanupUntil time.Time // the restarted compute's cleanup of evacuation records ends
	lastSeen     time.Time // the service's updated_at: last heartbeat or service update
	reporting    bool      // heartbeats reached the controller at the last stamp
	since        time.Time // when it last started reporting (after a gap)
	silent       time.Time // when it last stopped reporting
	// The fence entry of this host reaches the BMC of host bmc ("" : no BMC).
	bmc  string
	guid string // the identity of this host's own BMC
	// Faults of this host's own BMC (the device).
	bmcDown    bool // does not answer
	bmcSilent  bool // accepts power off, does nothing
	bmcLiesOff bool // reports power off whatever the truth
}

type server struct {
	id, name, host, image string
	status, task          string
	intent                model.PowerIntent
	copies                []string // hosts where a copy of this VM really runs
	updated               time.Time
	actions               []model.InstanceAction
	// work in flight: usually one action, but an action Nova's database forgot
	// (reset-state) goes on where its compute runs, beside the next one.
	work    []*work
	deleted bool
	guest   guest           // what only the host (its agent) sees of the guest
	meta    model.Metadata  // user metadata (groups.go)
	flavor  model.Resources // what it takes of its host (placement.go)
}

// work is an accepted action's remaining phases. Each phase is carried out by one
// compute (by) and waits while that compute is dead, as a task does in Nova.
type work struct {
	due    time.Time
	phases []phase
	dest   string   // the host the action ends on (counted against its capacity)
	ran    []string // the computes that carried out a phase of it
}

type phase struct {
	wait time.Duration
	by   string
	do   func(s *server)
	// inPlace: the action works on the server where it is (reboot, rebuild): it is
	// dropped once the server was moved elsewhere meanwhile (its compute no longer
	// owns it).
	inPlace bool
}

type migration struct {
	server, source, dest, kind, status string
}

// Notification is a server change as Nova's versioned notifications report it, at
// the cloud's time of the change.
type Notification struct {
	At     time.Time
	Server model.Server
}

// Cloud is the simulated cloud.
type Cloud struct {
	mu        sync.Mutex
	cfg       Config
	now       func() time.Time
	rng       *rand.Rand
	lat       *latency // nil: answers at once
	hosts     map[string]*host
	servers   map[string]*server
	ids       []string // the servers' IDs, sorted (created in order)
	hostNames []string // the hosts' names, sorted
	// usedMemo counts the servers per host for a run of CreateServer calls (a cloud
	// of 100,000 servers is built in linear time, not quadratic); any other change
	// drops it (advanceLocked, touchLocked).
	usedMemo map[string]int
	// near indexes hosts by segment and servers by host during a round of beats
	// (agents.go); nil otherwise.
	near       *nearIndex
	pending    map[string]bool
	migrations []migration
	seq        int
	calls      map[string]int
	failing    map[string][]error // op -> errors to return on the next calls
	lost       map[string]int     // op -> answers to lose after carrying the call out
	broken     map[string]bool    // actions on these servers end in ERROR
	// migrateFail: Vigil's migrations of these servers are accepted, then roll back.
	migrateFail map[string]bool
	down        bool // API unreachable
	hbStopped   bool // no heartbeat reaches the database (conductor, RabbitMQ down)
	feed        []Notification
	// Host agents (agents.go): nil until EnableAgents.
	agents *agents
	// syncs: servers whose guest died behind Nova's back, awaiting its power sync.
	syncs map[string]bool
	// fab: each server's ports and volume attachments (fabric.go).
	fab map[string]*fabric
	// stacks and server groups (groups.go).
	grp groups
	// Placement inventories and server groups (placement.go).
	res    map[string]hostRes
	groups []model.ServerGroup
}

// New returns an empty cloud whose time is read from now.
func New(cfg Config, now func() time.Time) *Cloud {
	return &Cloud{
		cfg: cfg, now: now, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5157)), lat: newLatency(cfg.Latency),
		hosts: map[string]*host{}, servers: map[string]*server{}, pending: map[string]bool{},
		calls: map[string]int{}, failing: map[string][]error{}, lost: map[string]int{}, broken: map[string]bool{},
	}
}

// CloudNow implements cloud.Clock: the simulated cloud's own clock, which stamps
// its servers' updated times and its hosts' heartbeats.
func (c *Cloud) CloudNow() (time.Time, bool) { return c.now(), true }

// AddHost adds a powered-on, up compute host with room for capacity servers, and a
// BMC of its own.
func (c *Cloud) AddHost(name, segment string, capacity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hosts[name] = &host{name: name, segment: segment, capacity: capacity,
		power: model.PowerOn, computeAlive: true, lastSeen: c.now(), since: c.now(), reporting: true,
		bmc: name, guid: fmt.Sprintf("%08x-0000-4000-8000-%012x", len(c.hosts)+1, c.rng.Uint64()>>16)}
	c.hostNames = append(c.hostNames, name)
	slices.Sort(c.hostNames)
}

// CreateServer boots a server on host (ACTIVE at once) and returns its ID.
func (c *Cloud) CreateServer(name, hostName string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hosts[hostName]
	if !ok {
		return "", fmt.Errorf("create %s: host %s: %w", name, hostName, cloud.ErrNotFound)
	}
	if h.capacity > 0 && c.usedMemoLocked()[hostName] >= h.capacity {
		return "", fmt.Errorf("create %s: host %s is full", name, hostName)
	}
	memo := c.usedMemo
	c.seq++
	id := fmt.Sprintf("srv-%05d", c.seq)
	now := c.now()
	c.servers[id] = &server{id: id, name: name, host: hostName, image: "img-" + name,
		status: model.StatusActive, intent: model.IntentOn, copies: []string{hostName},
		updated: now, actions: []model.InstanceAction{{Action: cloud.ActionCreate, Start: now}}}
	c.ids = append(c.ids, id)
	if memo != nil {
		memo[hostName]++
		c.usedMemo = memo
	}
	return id, nil
}

// usedMemoLocked is usedAllLocked, kept between CreateServer calls.
func (c *Cloud) usedMemoLocked() map[string]int {
	if c.usedMemo == nil {
		c.usedMemo = c.usedAllLocked()
	}
	return c.usedMemo
}

// usedAllLocked counts usedLocked for every host in one pass over the servers.
func (c *Cloud) usedAllLocked() map[string]int {
	used := make(map[string]int, len(c.hosts))
	for _, s := range c.servers {
		if s.deleted {
			continue
		}
		used[s.host]++
		for i, w := range s.work { // each other host it is bound for, once
			if w.dest != s.host && !slices.ContainsFunc(s.work[:i], func(o *work) bool { return o.dest == w.dest }) {
				used[w.dest]++
			}
		}
	}
	return used
}

func (c *Cloud) usedLocked(hostName string) int {
	n := 0
	for _, s := range c.servers {
		if s.deleted {
			continue
		}
		if s.host == hostName || slices.ContainsFunc(s.work, func(w *work) bool { return w.dest == hostName }) {
			n++
		}
	}
	return n
}

func (c *Cloud) call(op string) error {
	err := c.callLocked(op)
	if c.cfg.OnCall != nil {
		c.cfg.OnCall(op, err)
	}
	return err
}

func (c *Cloud) callLocked(op string) error {
	c.calls[op]++
	if c.cfg.CallLatency > 0 && c.cfg.Sleep != nil {
		c.mu.Unlock()
		c.cfg.Sleep(c.cfg.CallLatency)
		c.mu.Lock()
	}
	c.spendLocked(1)
	c.advanceLocked()
	if c.down {
		return fmt.Errorf("%s: %w: connection refused", op, cloud.ErrUnavailable)
	}
	if q := c.failing[op]; len(q) > 0 {
		c.failing[op] = q[1:]
		return fmt.Errorf("%s: %w", op, q[0])
	}
	if c.cfg.ErrorRate > 0 && c.rng.Float64() < c.cfg.ErrorRate {
		return fmt.Errorf("%s: %w: injected 503", op, cloud.ErrUnavailable)
	}
	return nil
}

// answer is the answer to a call the cloud carried out: nil, or a lost answer.
func (c *Cloud) answer(op string) error {
	if c.lost[op] > 0 {
		c.lost[op]--
		c.calls[op+" (answer lost)"]++
		return fmt.Errorf("%s: %w: %w", op, cloud.ErrUnavailable, ErrAnswerLost)
	}
	return nil
}

// advanceLocked lands every phase that is due, in a fixed order.
func (c *Cloud) advanceLocked() {
	c.usedMemo = nil
	now := c.now()
	for _, h := range c.hosts {
		c.stampLocked(h)
	}
	c.powerSyncLocked()
	if len(c.pending) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(c.pending))
	for _, id := range ids {
		s := c.servers[id]
		for _, w := range s.work {
			for len(w.phases) > 0 && !s.deleted && !now.Before(w.due) {
				ph := w.phases[0]
				if ph.inPlace && s.host != ph.by {
					w.phases = nil
					break
				}
				if h := c.hosts[ph.by]; h == nil || !h.computeAlive || h.power != model.PowerOn {
					break // the compute that must do it is gone: the task hangs, as in Nova
				}
				ph.do(s)
				c.touchLocked(s)
				w.ran = append(w.ran, ph.by)
				w.phases = w.phases[1:]
				if len(w.phases) > 0 {
					// The next phase follows this one's due time (applied lazily, so
					// several may land in one call).
					w.due = w.due.Add(w.phases[0].wait)
				}
			}
		}
		s.work = slices.DeleteFunc(s.work, func(w *work) bool { return len(w.phases) == 0 || s.deleted })
		if len(s.work) == 0 {
			s.work = nil
			delete(c.pending, id)
		}
	}
}

// stampLocked records when a host's heartbeats start or stop reaching the controller.
func (c *Cloud) stampLocked(h *host) {
	now := c.now()
	r := c.reportingLocked(h)
	switch {
	case r && !h.reporting:
		h.since = now
	case !r && h.reporting:
		h.silent = now
	}
	h.reporting = r
	if r {
		h.lastSeen = now
	}
}

func (c *Cloud) reportingLocked(h *host) bool {
	return h.power == model.PowerOn && h.computeAlive && !h.isolated && !c.hbStopped
}

func (c *Cloud) serviceStateLocked(h *host) model.ServiceState {
	if h.forcedDown || c.now().Sub(h.lastSeen) > c.cfg.ServiceDownTime {
		return model.ServiceDown
	}
	return model.ServiceUp
}

// touchLocked records a change of the server at the cloud's time (its updated_at),
// and its notification.
func (c *Cloud) touchLocked(s *server) {
	c.usedMemo = nil
	s.updated = c.now()
	if c.cfg.Notifications {
		c.feed = append(c.feed, Notification{At: s.updated, Server: s.view()})
	}
}

// ListServers implements cloud.Lister.
func (c *Cloud) ListServers(ctx context.Context, since time.Time) ([]model.Server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("list-servers"); err != nil {
		return nil, err
	}
	out := make([]model.Server, 0, len(c.servers))
	for _, s := range c.servers {
		if !since.IsZero() && s.updated.Before(since) {
			continue
		}
		if s.deleted && since.IsZero() {
			continue
		}
		out = append(out, s.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	// With paging (Latency), every page is counted; the first was the call above,
	// the others are calls of their own.
	if c.lat != nil {
		pages := c.lat.pages(len(out))
		c.calls["list-servers-page"] += pages
		c.spendLocked(pages - 1)
	}
	return out, nil
}

func (s *server) view() model.Server {
	st := s.status
	if s.deleted {
		st = model.StatusDeleted
	}
	return model.Server{ID: s.id, Name: s.name, Host: s.host, Status: st, TaskState: s.task,
		Intent: s.intent, Image: s.image, Updated: s.updated, Metadata: s.meta, Flavor: s.flavor}
}

// ListHosts implements cloud.Lister.
func (c *Cloud) ListHosts(ctx context.Context) ([]model.Host, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("list-hosts"); err != nil {
		return nil, err
	}
	out := make([]model.Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		mh := model.Host{Name: h.name, Segment: h.segment, Service: c.serviceStateLocked(h),
			ForcedDown: h.forcedDown, Disabled: h.disabled, Capacity: h.capacity, LastSeenUp: h.lastSeen}
		mh.Free, mh.FreeKnown = c.freeLocked(h.name)
		if mh.FreeKnown {
			mh.FreeAt = c.now()
		}
		out = append(out, mh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (c *Cloud) serverLocked(op, id string) (*server, error) {
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return nil, cloud.Terminal(fmt.Errorf("%s %s: server %w", op, id, cloud.ErrNotFound))
	}
	return s, nil
}

// startLocked records an accepted action and its phases; the last one ends in
// ERROR instead when actions on the server are broken.
func (c *Cloud) startLocked(s *server, action, status, task string, phases ...phase) {
	now := c.now()
	s.actions = append(s.actions, model.InstanceAction{Action: action, Start: now,
		RequestID: fmt.Sprintf("req-%d", len(s.actions))})
	s.status, s.task = status, task
	c.touchLocked(s)
	if c.broken[s.id] && action != cloud.ActionStop { // the owner's stop is not a recovery
		last := &phases[len(phases)-1]
		on := last.by
		last.do = func(s *server) { s.status, s.task, s.host = model.StatusError, "", on }
	}
	s.work = append(s.work, &work{due: now.Add(phases[0].wait), phases: phases, dest: phases[len(phases)-1].by})
	c.pending[s.id] = true
}

// runsOn is a final phase: the server is ACTIVE on h, a copy running there.
func runsOn(h string) func(*server) {
	return func(s *server) {
		s.status, s.task, s.host = model.StatusActive, "", h
		if !slices.Contains(s.copies, h) {
			s.copies = append(s.copies, h)
		}
		s.guest.dom = domFault{} // a running copy: whatever domain had died is gone
	}
}

func taskIs(task string) func(*server) { return func(s *server) { s.task = task } }

// Reboot implements cloud.Actor with Nova's rules: a soft reboot needs ACTIVE; a
// hard reboot is also allowed from SHUTOFF, PAUSED, SUSPENDED and ERROR.
func (c *Cloud) Reboot(ctx context.Context, id string, hard bool) error {
	op := "reboot"
	if hard {
		op = "hard-reboot"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call(op); err != nil {
		return err
	}
	s, err := c.serverLocked(op, id)
	if err != nil {
		return err
	}
	allowed := []string{model.StatusActive}
	if hard {
		allowed = append(allowed, model.StatusShutoff, model.StatusPaused, model.StatusSuspended, model.StatusError)
	}
	if s.task != "" || !slices.Contains(allowed, s.status) {
		return fmt.Errorf("%s %s: %w: cannot reboot while status %s task %q", op, id, cloud.ErrConflict, s.status, s.task)
	}
	status, task := model.StatusReboot, "rebooting"
	if hard {
		status, task = model.StatusHardReboot, "rebooting_hard"
	}
	s.intent = model.IntentOn
	cure := cureSoftReboot
	if hard {
		cure = cureHardReboot
	}
	c.startLocked(s, cloud.ActionReboot, status, task, phase{wait: c.cfg.ActionLatency, by: s.host, do: cured(runsOn(s.host), cure), inPlace: true})
	return c.answer(op)
}

// Rebuild implements cloud.Actor: in place, same ID and image, from ACTIVE, SHUTOFF or ERROR.
func (c *Cloud) Rebuild(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("rebuild"); err != nil {
		return err
	}
	s, err := c.serverLocked("rebuild", id)
	if err != nil {
		return err
	}
	if s.task != "" || !slices.Contains([]string{model.StatusActive, model.StatusShutoff, model.StatusError}, s.status) {
		return fmt.Errorf("rebuild %s: %w: cannot rebuild while status %s task %q", id, cloud.ErrConflict, s.status, s.task)
	}
	s.intent = model.IntentOn
	half := c.cfg.ActionLatency / 2
	c.startLocked(s, cloud.ActionRebuild, model.StatusRebuild, "rebuilding",
		phase{wait: half, by: s.host, do: taskIs("rebuild_spawning"), inPlace: true},
		phase{wait: c.cfg.ActionLatency - half, by: s.host, do: cured(runsOn(s.host), cureNew), inPlace: true})
	return c.answer("rebuild")
}

// Evacuate implements cloud.Actor. Like Nova, it refuses unless the source compute
// service is down, and places the server itself when target is "". The server
// keeps its source host (REBUILD, rebuilding) until the conductor has placed it
// (ConductorDelay), then spawns on the target (rebuild_spawning). Nova records an
// evacuation migration: the source's compute destroys its local copy when it next
// starts (init_host), not before.
func (c *Cloud) Evacuate(ctx context.Context, id, target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("evacuate"); err != nil {
		return err
	}
	s, err := c.serverLocked("evacuate", id)
	if err != nil {
		return err
	}
	src := c.hosts[s.host]
	if src != nil && c.serviceStateLocked(src) == model.ServiceUp {
		return fmt.Errorf("evacuate %s: %w: compute service of %s is still in use", id, cloud.ErrConflict, s.host)
	}
	if s.task != "" {
		return fmt.Errorf("evacuate %s: %w: task %q in progress", id, cloud.ErrConflict, s.task)
	}
	if !slices.Contains([]string{model.StatusActive, model.StatusShutoff, model.StatusError}, s.status) {
		return fmt.Errorf("evacuate %s: %w: cannot evacuate while status %s", id, cloud.ErrConflict, s.status)
	}
	if target == "" {
		target = c.pickHostLocked(s)
		if target == "" {
			return cloud.Terminal(fmt.Errorf("evacuate %s: no valid host found: no other compute host is up with room (and allowed by its server groups)", id))
		}
	} else {
		t := c.hosts[target]
		if t == nil || t == src || c.serviceStateLocked(t) != model.ServiceUp || t.disabled {
			return fmt.Errorf("evacuate %s: %w: target %s is not an up, enabled host", id, cloud.ErrConflict, target)
		}
		if t.capacity > 0 && c.usedLocked(target) >= t.capacity || !c.roomLocked(target, s) {
			return fmt.Errorf("evacuate %s: %w: target %s is full", id, cloud.ErrConflict, target)
		}
		if !c.groupAllowsLocked(s, target) {
			// Nova 2.68+ checks a named host with the scheduler's filters, and the
			// target compute checks the group again (a forced host too).
			return fmt.Errorf("evacuate %s: %w: no valid host: target %s breaks the rule of the server's group", id, cloud.ErrConflict, target)
		}
	}
	c.migrations = append(c.migrations, migration{server: id, source: s.host, dest: target, kind: "evacuation", status: "accepted"})
	mig := len(c.migrations) - 1
	s.intent = model.IntentOn
	place := func(s *server) { s.host, s.task = target, "rebuild_spawning" }
	done := func(s *server) {
		cured(runsOn(target), cureNew)(s)
		c.migrations[mig].status = "done"
	}
	if c.cfg.ConductorDelay == 0 {
		s.host = target
		c.startLocked(s, cloud.ActionEvacuate, model.StatusRebuild, "rebuild_spawning",
			phase{wait: c.cfg.ActionLatency, by: target, do: done})
		return c.answer("evacuate")
	}
	delay := c.cfg.ConductorDelay/2 + time.Duration(c.rng.Int64N(int64(c.cfg.ConductorDelay)))
	c.startLocked(s, cloud.ActionEvacuate, model.StatusRebuild, "rebuilding",
		phase{wait: delay, by: target, do: place},
		phase{wait: c.cfg.ActionLatency, by: target, do: done})
	return c.answer("evacuate")
}

// pickHostLocked is the scheduler: an up, enabled host other than s's, with room
// and allowed by s's server groups; the one with the most free slots.
func (c *Cloud) pickHostLocked(s *server) string {
	best, bestFree := "", -1
	used := c.usedAllLocked() // once, not once per host: 10,000 hosts x 100,000 servers
	for _, name := range c.hostNames {
		h := c.hosts[name]
		if name == s.host || h.disabled || c.serviceStateLocked(h) != model.ServiceUp || !c.roomLocked(name, s) || !c.groupAllowsLocked(s, name) {
			continue
		}
		free := 1 << 30
		if h.capacity > 0 {
			free = h.capacity - used[name]
		}
		if free > 0 && free > bestFree {
			best, bestFree = name, free
		}
	}
	return best
}

// ForceDown implements cloud.Actor. Like Nova, any update of a service bumps its
// updated_at (the heartbeat time the API shows): a dead compute forced up looks up
// for ServiceDownTime.
func (c *Cloud) ForceDown(ctx context.Context, hostName string, down bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("force-down"); err != nil {
		return err
	}
	h, ok := c.hosts[hostName]
	if !ok {
		return cloud.Terminal(fmt.Errorf("force-down %s: host %w", hostName, cloud.ErrNotFound))
	}
	if !down {
		if err := c.evacuationRecordsLocked(h); err != nil {
			return err
		}
	}
	h.forcedDown, h.lastSeen = down, c.now()
	return c.answer("force-down")
}

// ResetState implements cloud.Actor: ERROR and no task in Nova's database. Like
// Nova's, it stops nothing: an action in flight on a live compute (an evacuation
// spawning on its target) goes on and lands.
func (c *Cloud) ResetState(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("reset-state"); err != nil {
		return err
	}
	s, err := c.serverLocked("reset-state", id)
	if err != nil {
		return err
	}
	s.status, s.task = model.StatusError, ""
	c.touchLocked(s)
	return c.answer("reset-state")
}

// Actions implements cloud.Actor.
func (c *Cloud) Actions(ctx context.Context, id string) ([]model.InstanceAction, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("actions"); err != nil {
		return nil, err
	}
	s, ok := c.servers[id]
	if !ok {
		return nil, cloud.Terminal(fmt.Errorf("actions %s: server %w", id, cloud.ErrNotFound))
	}
	return slices.Clone(s.actions), nil
}

// CanFence implements cloud.Fencer: whether the host has a fence entry (a BMC).
func (c *Cloud) CanFence(hostName string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hosts[hostName]
	return ok && h.bmc != ""
}

// bmcLocked is the BMC that host's fence entry reaches: its own, or another host's
// when the entry is miswired.
func (c *Cloud) bmcLocked(op, hostName string) (*host, error) {
	h, ok := c.hosts[hostName]
	if !ok || h.bmc == "" {
		return nil, cloud.Terminal(fmt.Errorf("%s %s: no BMC configured", op, hostName))
	}
	b := c.hosts[h.bmc]
	if b.bmcDown {
		return nil, fmt.Errorf("%s %s: BMC %w: no answer", op, hostName, cloud.ErrUnavailable)
	}
	return b, nil
}

// PowerOff implements cloud.Fencer: the machine whose BMC the entry reaches loses
// power and every copy on it stops.
func (c *Cloud) PowerOff(ctx context.Context, hostName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["bmc-power-off"]++
	c.advanceLocked()
	b, err := c.bmcLocked("power off", hostName)
	if err != nil {
		return err
	}
	if !b.bmcSilent {
		c.powerOffLocked(b)
	}
	return c.answer("power-off")
}

// PowerStatus implements cloud.Fencer: what the BMC the entry reaches says.
func (c *Cloud) PowerStatus(ctx context.Context, hostName string) (model.Power, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["bmc-power-status"]++
	b, err := c.bmcLocked("power status", hostName)
	if err != nil {
		return model.PowerUnknown, err
	}
	if b.bmcLiesOff {
		return model.PowerOff, nil
	}
	return b.power, nil
}

// Identity implements cloud.Identifier: the GUID of the BMC the entry reaches.
func (c *Cloud) Identity(ctx context.Context, hostName string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["bmc-identity"]++
	b, err := c.bmcLocked("identity", hostName)
	if err != nil {
		return "", err
	}
	return b.guid, nil
}

// powerOffLocked: the host stops, every copy on it, and the work its compute was
// in the middle of (a task it had started is lost with the process; one not yet
// started waits in its queue).
func (c *Cloud) powerOffLocked(h *host) {
	h.power = model.PowerOff
	h.computeAlive = false
	for _, s := range c.servers {
		s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == h.name })
		if s.guest.dom.host == h.name {
			s.guest.dom = domFault{} // the dead domain went with the power
		}
		s.work = slices.DeleteFunc(s.work, func(w *work) bool {
			return len(w.phases) > 0 && w.phases[0].by == h.name && slices.Contains(w.ran, h.name)
		})
	}
	c.stampLocked(h)
}
