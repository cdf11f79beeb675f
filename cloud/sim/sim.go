package sim

import (
	"context"
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
	// CallLatency is spent in Sleep on every API call, when both are set.
	CallLatency time.Duration
	Sleep       func(time.Duration)
	// ErrorRate is the probability that any API call fails with ErrUnavailable,
	// drawn from a generator seeded with Seed.
	ErrorRate float64
	Seed      uint64
}

// DefaultConfig is a fast cloud for the demo and tests.
func DefaultConfig() Config {
	return Config{ActionLatency: 2 * time.Second, ServiceDownTime: 6 * time.Second}
}

type host struct {
	name, segment string
	capacity      int
	power         model.Power // the truth
	computeAlive  bool        // the nova-compute process
	isolated      bool        // alive, but its reports do not reach the controller
	forcedDown    bool
	disabled      bool
	lastSeen      time.Time // last heartbeat that reached the controller
	since         time.Time // when it last started reporting (after a gap)
	bmcDown       bool      // BMC does not answer
	bmcLies       bool      // BMC accepts power off but nothing happens
}

type server struct {
	id, name, host, image string
	status, task          string
	intent                model.PowerIntent
	copies                []string // hosts where a copy of this VM really runs
	updated               time.Time
	actions               []model.InstanceAction
	pending               *transition
	deleted               bool
}

type transition struct {
	due    time.Time
	host   string // where the server ends up
	status string
	failTo string // when set, the action ends in this status (ERROR)
}

// Cloud is the simulated cloud.
type Cloud struct {
	mu      sync.Mutex
	cfg     Config
	now     func() time.Time
	rng     *rand.Rand
	hosts   map[string]*host
	servers map[string]*server
	pending map[string]bool
	seq     int
	calls   map[string]int
	failing map[string][]error // op -> errors to return on the next calls
	broken  map[string]bool    // actions on these servers end in ERROR
	down    bool               // API unreachable
}

// New returns an empty cloud whose time is read from now.
func New(cfg Config, now func() time.Time) *Cloud {
	return &Cloud{
		cfg: cfg, now: now, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5157)),
		hosts: map[string]*host{}, servers: map[string]*server{}, pending: map[string]bool{},
		calls: map[string]int{}, failing: map[string][]error{}, broken: map[string]bool{},
	}
}

// CloudNow implements cloud.Clock: the simulated cloud's own clock, which stamps
// its servers' updated times and its hosts' heartbeats.
func (c *Cloud) CloudNow() (time.Time, bool) { return c.now(), true }

// AddHost adds a powered-on, up compute host with room for capacity servers.
func (c *Cloud) AddHost(name, segment string, capacity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hosts[name] = &host{name: name, segment: segment, capacity: capacity,
		power: model.PowerOn, computeAlive: true, lastSeen: c.now(), since: c.now()}
}

// CreateServer boots a server on host (ACTIVE at once) and returns its ID.
func (c *Cloud) CreateServer(name, hostName string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hosts[hostName]
	if !ok {
		return "", fmt.Errorf("create %s: host %s: %w", name, hostName, cloud.ErrNotFound)
	}
	if h.capacity > 0 && c.usedLocked(hostName) >= h.capacity {
		return "", fmt.Errorf("create %s: host %s is full", name, hostName)
	}
	c.seq++
	id := fmt.Sprintf("srv-%05d", c.seq)
	now := c.now()
	c.servers[id] = &server{id: id, name: name, host: hostName, image: "img-" + name,
		status: model.StatusActive, intent: model.IntentOn, copies: []string{hostName},
		updated: now, actions: []model.InstanceAction{{Action: cloud.ActionCreate, Start: now}}}
	return id, nil
}

func (c *Cloud) usedLocked(hostName string) int {
	n := 0
	for _, s := range c.servers {
		if !s.deleted && s.host == hostName {
			n++
		}
	}
	return n
}

func (c *Cloud) call(op string) error {
	c.calls[op]++
	if c.cfg.CallLatency > 0 && c.cfg.Sleep != nil {
		c.mu.Unlock()
		c.cfg.Sleep(c.cfg.CallLatency)
		c.mu.Lock()
	}
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

// advanceLocked lands every transition that is due, in a fixed order.
func (c *Cloud) advanceLocked() {
	now := c.now()
	for _, h := range c.hosts {
		if h.reporting() {
			h.lastSeen = now
		}
	}
	if len(c.pending) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(c.pending))
	for _, id := range ids {
		s := c.servers[id]
		t := s.pending
		if t == nil || s.deleted {
			delete(c.pending, id)
			continue
		}
		if now.Before(t.due) {
			continue
		}
		h := c.hosts[t.host]
		if h == nil || !h.computeAlive || h.power != model.PowerOn {
			continue // the compute that must do it is gone: the task hangs, as in Nova
		}
		delete(c.pending, id)
		s.pending = nil
		s.task = ""
		s.updated = now
		if t.failTo != "" {
			s.status = t.failTo
			continue
		}
		s.status = t.status
		if t.status == model.StatusActive && !slices.Contains(s.copies, t.host) {
			s.copies = append(s.copies, t.host)
		}
	}
}

func (h *host) reporting() bool {
	return h.power == model.PowerOn && h.computeAlive && !h.isolated
}

func (c *Cloud) serviceStateLocked(h *host) model.ServiceState {
	if h.forcedDown || c.now().Sub(h.lastSeen) > c.cfg.ServiceDownTime {
		return model.ServiceDown
	}
	return model.ServiceUp
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
	return out, nil
}

func (s *server) view() model.Server {
	st := s.status
	if s.deleted {
		st = model.StatusDeleted
	}
	return model.Server{ID: s.id, Name: s.name, Host: s.host, Status: st, TaskState: s.task,
		Intent: s.intent, Image: s.image, Updated: s.updated}
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
		out = append(out, model.Host{Name: h.name, Segment: h.segment, Service: c.serviceStateLocked(h),
			ForcedDown: h.forcedDown, Disabled: h.disabled, Capacity: h.capacity, LastSeenUp: h.lastSeen})
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

func (c *Cloud) startLocked(s *server, action, status string, t transition) {
	now := c.now()
	s.actions = append(s.actions, model.InstanceAction{Action: action, Start: now,
		RequestID: fmt.Sprintf("req-%d", len(s.actions))})
	s.status, s.task, s.updated = status, action, now
	t.due = now.Add(c.cfg.ActionLatency)
	if c.broken[s.id] {
		t.failTo = model.StatusError
	}
	s.pending = &t
	c.pending[s.id] = true
}

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
	status := model.StatusReboot
	if hard {
		status = model.StatusHardReboot
	}
	s.intent = model.IntentOn
	c.startLocked(s, cloud.ActionReboot, status, transition{host: s.host, status: model.StatusActive})
	return nil
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
	c.startLocked(s, cloud.ActionRebuild, model.StatusRebuild, transition{host: s.host, status: model.StatusActive})
	return nil
}

// Evacuate implements cloud.Actor. Like Nova, it refuses unless the source compute
// service is down, and places the server itself when target is "".
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
		target = c.pickHostLocked(s.host)
		if target == "" {
			return cloud.Terminal(fmt.Errorf("evacuate %s: no valid host found: no other compute host is up with room", id))
		}
	} else {
		t := c.hosts[target]
		if t == nil || t == src || c.serviceStateLocked(t) != model.ServiceUp || t.disabled {
			return fmt.Errorf("evacuate %s: %w: target %s is not an up, enabled host", id, cloud.ErrConflict, target)
		}
		if t.capacity > 0 && c.usedLocked(target) >= t.capacity {
			return fmt.Errorf("evacuate %s: %w: target %s is full", id, cloud.ErrConflict, target)
		}
	}
	c.startLocked(s, cloud.ActionEvacuate, model.StatusRebuild,
		transition{host: target, status: model.StatusActive})
	s.intent = model.IntentOn
	s.host = target // Nova moves instance.host when the rebuild starts on the target
	return nil
}

func (c *Cloud) pickHostLocked(exclude string) string {
	best, bestFree := "", -1
	for _, name := range slices.Sorted(maps.Keys(c.hosts)) {
		h := c.hosts[name]
		if name == exclude || h.disabled || c.serviceStateLocked(h) != model.ServiceUp {
			continue
		}
		free := 1 << 30
		if h.capacity > 0 {
			free = h.capacity - c.usedLocked(name)
		}
		if free > 0 && free > bestFree {
			best, bestFree = name, free
		}
	}
	return best
}

// ForceDown implements cloud.Actor. A service forced up reports up only while its
// compute is alive and reaching the controller.
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
	h.forcedDown = down
	return nil
}

// ResetState implements cloud.Actor: ERROR, no task, whatever was in flight is dropped.
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
	s.status, s.task, s.pending, s.updated = model.StatusError, "", nil, c.now()
	delete(c.pending, id)
	return nil
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

// CanFence implements cloud.Fencer: every simulated host has a BMC.
func (c *Cloud) CanFence(hostName string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.hosts[hostName]
	return ok
}

// PowerOff implements cloud.Fencer: the host loses power and every copy on it stops.
func (c *Cloud) PowerOff(ctx context.Context, hostName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["bmc-power-off"]++
	h, ok := c.hosts[hostName]
	if !ok {
		return cloud.Terminal(fmt.Errorf("power off %s: no such BMC", hostName))
	}
	if h.bmcDown {
		return fmt.Errorf("power off %s: BMC %w: no answer", hostName, cloud.ErrUnavailable)
	}
	if !h.bmcLies {
		c.powerOffLocked(h)
	}
	return nil
}

// PowerStatus implements cloud.Fencer.
func (c *Cloud) PowerStatus(ctx context.Context, hostName string) (model.Power, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["bmc-power-status"]++
	h, ok := c.hosts[hostName]
	if !ok {
		return model.PowerUnknown, cloud.Terminal(fmt.Errorf("power status %s: no such BMC", hostName))
	}
	if h.bmcDown {
		return model.PowerUnknown, fmt.Errorf("power status %s: BMC %w: no answer", hostName, cloud.ErrUnavailable)
	}
	return h.power, nil
}

func (c *Cloud) powerOffLocked(h *host) {
	h.power = model.PowerOff
	h.computeAlive = false
	for _, s := range c.servers {
		s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == h.name })
	}
}
