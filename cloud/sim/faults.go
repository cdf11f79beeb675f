package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// The methods below inject faults and act as the cloud's users and operators.

// Crash puts a server into ERROR: its guest died.
func (c *Cloud) Crash(id string) error {
	return c.withServer(id, func(s *server) {
		s.status, s.task = model.StatusError, ""
		s.copies = nil
	})
}

// PowerOffBehindBack stops a server without its owner asking: SHUTOFF, intent still on.
func (c *Cloud) PowerOffBehindBack(id string) error {
	return c.withServer(id, func(s *server) {
		s.status, s.task = model.StatusShutoff, ""
		s.copies = nil
	})
}

// Stop is the owner stopping a server through the API: SHUTOFF with intent off.
// Like Nova's, it is refused while a task is in progress; the guest is powered off
// by its compute (task powering-off), which a dead compute never does.
func (c *Cloud) Stop(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return fmt.Errorf("stop %s: %w", id, cloud.ErrNotFound)
	}
	if s.task != "" || (s.status != model.StatusActive && s.status != model.StatusError) {
		return fmt.Errorf("stop %s: %w: status %s task %q", id, cloud.ErrConflict, s.status, s.task)
	}
	s.intent = model.IntentOff
	on := s.host
	c.startLocked(s, cloud.ActionStop, s.status, "powering-off", phase{wait: time.Second, by: on, inPlace: true, do: func(s *server) {
		s.status, s.task = model.StatusShutoff, ""
		s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == on })
	}})
	return nil
}

// Delete removes a server, as its owner would.
func (c *Cloud) Delete(id string) error {
	return c.withServer(id, func(s *server) {
		s.deleted, s.copies = true, nil
		s.actions = append(s.actions, model.InstanceAction{Action: "delete", Start: c.now()})
	})
}

// BreakServer makes every later action on the server end in ERROR (true) or work again.
func (c *Cloud) BreakServer(id string, broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken[id] = broken
}

// withServer changes a server by a user's or a fault's hand: whatever task it had
// is dropped.
func (c *Cloud) withServer(id string, f func(*server)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return fmt.Errorf("server %s: %w", id, cloud.ErrNotFound)
	}
	f(s)
	s.work = nil
	c.touchLocked(s)
	delete(c.pending, id)
	return nil
}

func (c *Cloud) withHost(name string, f func(*host)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	h, ok := c.hosts[name]
	if !ok {
		return fmt.Errorf("host %s: %w", name, cloud.ErrNotFound)
	}
	f(h)
	c.stampLocked(h)
	return nil
}

// KillHost is a power loss: the host and every copy on it stop; Nova notices only
// when the service's heartbeats are overdue.
func (c *Cloud) KillHost(name string) error {
	return c.withHost(name, c.powerOffLocked)
}

// PowerOnHost restores power; the compute starts (init_host), as Nova's does:
//   - it destroys the local copies of servers whose evacuation from this host was
//     accepted (a migration record), and of servers no longer assigned to it;
//   - a server left rebuilding or moving here, its work lost, goes to ERROR;
//   - the guests of ACTIVE servers still assigned to it start again when
//     ResumeGuestsOnBoot is set (resume_guests_state_on_host_boot), else its
//     power-state sync stops them (SHUTOFF).
//
// The service's forced_down is left as it was: forcing it up is the operator's
// separate act.
func (c *Cloud) PowerOnHost(name string) error {
	return c.withHost(name, func(h *host) {
		was := h.computeAlive && h.power == model.PowerOn
		h.power, h.computeAlive = model.PowerOn, true
		if !was {
			c.initHostLocked(name)
		}
	})
}

func (c *Cloud) initHostLocked(name string) {
	evacuated := map[string]bool{}
	for i, m := range c.migrations {
		if m.kind == "evacuation" && m.source == name && (m.status == "accepted" || m.status == "done") {
			evacuated[m.server] = true
			c.migrations[i].status = "completed"
		}
	}
	if len(evacuated) > 0 && c.cfg.CleanupDelay > 0 {
		c.hosts[name].cleanupUntil = c.now().Add(c.cfg.CleanupDelay)
	}
	for _, id := range slices.Sorted(maps.Keys(c.servers)) {
		s := c.servers[id]
		if evacuated[id] || s.host != name {
			s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == name })
			continue
		}
		notSwitched := func(w *work) bool { return len(w.phases) > 0 && w.phases[0].by == name && len(w.ran) == 0 }
		if !s.deleted && s.task == "migrating" && slices.ContainsFunc(s.work, notSwitched) {
			// _init_instance: a live migration this compute was driving, before its
			// switch-over (the guest ran only here), died with it: Nova aborts it and
			// resets the task. The guest is then treated like any other ACTIVE one
			// below (resumed, or found not running by the power-state sync), never
			// rolled back later to ACTIVE with no copy, which only a host agent could see.
			s.work = slices.DeleteFunc(s.work, notSwitched)
			for i, m := range c.migrations {
				if m.kind == "live-migration" && m.server == id && m.status == "accepted" {
					c.migrations[i].status = "error"
				}
			}
			s.status, s.task = model.StatusActive, ""
			c.touchLocked(s)
		}
		if s.deleted || slices.Contains(s.copies, name) {
			continue
		}
		if len(s.work) == 0 && slices.Contains([]string{"rebuilding", "rebuild_spawning", "migrating", "resize_migrating", "resize_migrated", "resize_finish"}, s.task) {
			// _init_instance: a rebuild or move interrupted here cannot go on.
			s.status, s.task = model.StatusError, ""
			c.touchLocked(s)
			continue
		}
		if s.status == model.StatusVerify && s.task == "" {
			// A migrated server awaiting its owner's confirmation runs here, on the
			// destination: Nova resumes it like any guest recorded running (its
			// vm_state stays RESIZED); without resume it stays not running, and the
			// confirmation finds it so (see ConfirmResize).
			if c.cfg.ResumeGuestsOnBoot && s.intent != model.IntentOff {
				s.copies = append(s.copies, name)
			}
			continue
		}
		if s.status != model.StatusActive || s.task != "" {
			continue
		}
		if c.cfg.ResumeGuestsOnBoot && s.intent != model.IntentOff {
			s.copies = append(s.copies, name)
			cureHardReboot(s) // a fresh boot of the guest
		} else {
			s.status = model.StatusShutoff // the power-state sync: found not running
		}
		c.touchLocked(s)
	}
}

// IsolateHost cuts the host off every network: it looks down, its VMs keep running;
// its agent's paths and its peers' links are cut too.
func (c *Cloud) IsolateHost(name string, isolated bool) error {
	return c.withHost(name, func(h *host) { h.isolated, h.cut = isolated, isolated })
}

// CutFromController cuts the host off the controller only: Nova's view of it and its
// agent's paths to Vigil go, the peers of its segment still hear it (a segment
// partition seen from the controller's side).
func (c *Cloud) CutFromController(name string, cut bool) error {
	return c.withHost(name, func(h *host) { h.isolated, h.ctrlCut = cut, cut })
}

// SetBMC makes a host's BMC unreachable (down) or accept power-off without acting (silent).
func (c *Cloud) SetBMC(name string, down, silent bool) error {
	return c.withHost(name, func(h *host) { h.bmcDown, h.bmcSilent = down, silent })
}

// SetBMCLiesOff makes a host's BMC report its power off whatever the truth.
func (c *Cloud) SetBMCLiesOff(name string, lies bool) error {
	return c.withHost(name, func(h *host) { h.bmcLiesOff = lies })
}

// SetFenceEntry points host's fence entry at the BMC of host bmc (a miswired entry
// when bmc is another host; "" removes the host's BMC).
func (c *Cloud) SetFenceEntry(name, bmc string) error {
	c.mu.Lock()
	_, ok := c.hosts[bmc]
	c.mu.Unlock()
	if bmc != "" && !ok {
		return fmt.Errorf("fence entry of %s: BMC of host %s: %w", name, bmc, cloud.ErrNotFound)
	}
	return c.withHost(name, func(h *host) { h.bmc = bmc })
}

// SetDisabled disables or enables a host's compute service for scheduling. Like
// every service update in Nova, it bumps the service's updated_at.
func (c *Cloud) SetDisabled(name string, disabled bool) error {
	return c.withHost(name, func(h *host) { h.disabled, h.lastSeen = disabled, c.now() })
}

// SetForcedDown is an operator (or another tool) forcing a host's service down or up,
// outside Vigil: updated_at is bumped as on any service update.
func (c *Cloud) SetForcedDown(name string, down bool) error {
	return c.withHost(name, func(h *host) { h.forcedDown, h.lastSeen = down, c.now() })
}

// StopHeartbeats stops (true) every compute's heartbeat at once, as a conductor or
// message-queue outage does, while the hosts and their VMs run on.
func (c *Cloud) StopHeartbeats(stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	c.hbStopped = stopped
	for _, h := range c.hosts {
		c.stampLocked(h)
	}
}

// LoseAnswers makes the next n calls of op (evacuate, reboot, hard-reboot, rebuild,
// force-down, reset-state, power-off) be carried out but answered ErrUnavailable.
func (c *Cloud) LoseAnswers(op string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lost[op] += n
}

// LiveMigrate is an operator's live migration to dest: MIGRATING/migrating; the copy
// runs on the source, then switches over to dest (switch after it started); the
// source compute then finishes (post-migration): host = dest, ACTIVE. If the source
// dies after the switch, the copy runs on at dest while the server still says
// MIGRATING on the source.
//
// A destination that is dead when the switch is due (its power lost after the
// migration was accepted, before Nova saw its service down) cannot receive the
// guest: pre_live_migration on it gets no answer, Nova rolls the migration back and
// the server stays ACTIVE on its source, where its copy never stopped. (A copy must
// never appear on a host without power.)
func (c *Cloud) LiveMigrate(id, dest string, switchAfter time.Duration) error {
	return c.move(id, dest, "live-migration", c.liveMigration(dest, switchAfter))
}

func (c *Cloud) liveMigration(dest string, switchAfter time.Duration) func(*server) {
	return func(s *server) {
		src := s.host
		var w *work
		c.startLocked(s, "live-migration", model.StatusMigrating, "migrating",
			phase{wait: switchAfter, by: src, do: func(s *server) {
				if d := c.hosts[dest]; d == nil || d.power != model.PowerOn || !d.computeAlive {
					s.status, s.task = model.StatusActive, ""
					w.phases = w.phases[:1] // rolled back: the switch-over and what follows are dropped
					return
				}
				s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == src })
				if !slices.Contains(s.copies, dest) {
					s.copies = append(s.copies, dest)
				}
			}},
			phase{wait: c.cfg.ActionLatency, by: src, do: func(s *server) {
				// Post-migration, run by the source: the guest switched over already.
				// If dest lost its power since, its copy went with it, and none may
				// reappear there (sim seed 1368 of issue 15: a copy came back on a
				// fenced host beside its evacuated one).
				had := slices.Contains(s.copies, dest)
				runsOn(dest)(s)
				if !had {
					s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == dest })
				}
			}})
		w = s.work[len(s.work)-1]
	}
}

// Migrate is an operator's cold migration (resize false) or resize: RESIZE through
// resize_prep, resize_migrating (the copy on the source stops), resize_migrated,
// resize_finish (on dest), then VERIFY_RESIZE on dest until ConfirmResize.
func (c *Cloud) Migrate(id, dest string, resize bool) error {
	action := "migrate"
	if resize {
		action = "resize"
	}
	return c.move(id, dest, action, c.coldMigration(dest, action))
}

func (c *Cloud) coldMigration(dest, action string) func(*server) {
	return func(s *server) {
		src, step := s.host, c.cfg.ActionLatency/2
		c.startLocked(s, action, model.StatusResize, "resize_prep",
			phase{wait: step, by: src, do: taskIs("resize_migrating")},
			phase{wait: step, by: src, do: func(s *server) {
				s.task = "resize_migrated"
				s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == src })
			}},
			phase{wait: step, by: dest, do: func(s *server) { s.task, s.host = "resize_finish", dest }},
			phase{wait: step, by: dest, do: func(s *server) {
				s.status, s.task = model.StatusVerify, ""
				if !slices.Contains(s.copies, dest) {
					s.copies = append(s.copies, dest)
				}
			}})
	}
}

func (c *Cloud) move(id, dest, kind string, start func(*server)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	return c.moveLocked(id, dest, kind, start)
}

func (c *Cloud) moveLocked(id, dest, kind string, start func(*server)) error {
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return fmt.Errorf("%s %s: %w", kind, id, cloud.ErrNotFound)
	}
	t := c.hosts[dest]
	if s.status != model.StatusActive || s.task != "" || t == nil || dest == s.host ||
		c.serviceStateLocked(t) != model.ServiceUp || t.disabled || t.capacity > 0 && c.usedLocked(dest) >= t.capacity ||
		!c.roomLocked(dest, s) || !c.groupAllowsLocked(s, dest) { // a named host still goes through the scheduler's filters
		return fmt.Errorf("%s %s to %s: %w", kind, id, dest, cloud.ErrConflict)
	}
	c.migrations = append(c.migrations, migration{server: id, source: s.host, dest: dest, kind: kind, status: "accepted"})
	start(s)
	s.work[len(s.work)-1].dest = dest
	return nil
}

// ConfirmResize is the owner confirming a migration or resize: VERIFY_RESIZE -> ACTIVE,
// or SHUTOFF when its guest does not run (its host lost power meanwhile and did not
// resume it): Nova's power-state sync records the guest shut down, and stops an
// ACTIVE instance it finds so. Never ACTIVE with no guest: that is a lost guest Nova
// would report, not one that only a host agent could see.
func (c *Cloud) ConfirmResize(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted || s.status != model.StatusVerify {
		return fmt.Errorf("confirm resize %s: %w", id, cloud.ErrConflict)
	}
	s.status = model.StatusActive
	if len(s.copies) == 0 {
		s.status = model.StatusShutoff
	}
	s.actions = append(s.actions, model.InstanceAction{Action: "confirmResize", Start: c.now()})
	c.touchLocked(s)
	return nil
}

// DrainNotifications returns the notifications since the last drain, oldest first.
func (c *Cloud) DrainNotifications() []Notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	out := c.feed
	c.feed = nil
	return out
}

// SetErrorRate sets the probability that an API call fails with ErrUnavailable.
func (c *Cloud) SetErrorRate(p float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.ErrorRate = p
}

// SetCallLatency sets the time every API call takes (spent in Config.Sleep).
func (c *Cloud) SetCallLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.CallLatency = d
}

// HostTruth is what really holds for a host, which the API does not show.
type HostTruth struct {
	Power     model.Power
	Alive     bool      // powered on, its compute running
	Reporting bool      // alive and its heartbeats reaching the controller
	Since     time.Time // reporting continuously since then
	Silent    time.Time // not reporting since then (when not Reporting)
	Segment   string
	// BMC is the host whose power the fence entry of this one really controls ("":
	// no BMC); BMCIdentity is that BMC's GUID.
	BMC         string
	BMCIdentity string
	ForcedDown  bool
	Disabled    bool
}

// Truth returns a host's real state.
func (c *Cloud) Truth(name string) HostTruth {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	h, ok := c.hosts[name]
	if !ok {
		return HostTruth{}
	}
	t := HostTruth{Power: h.power, Alive: h.power == model.PowerOn && h.computeAlive, Reporting: h.reporting,
		Since: h.since, Silent: h.silent, Segment: h.segment, BMC: h.bmc, ForcedDown: h.forcedDown, Disabled: h.disabled}
	if b, ok := c.hosts[h.bmc]; ok {
		t.BMCIdentity = b.guid
	}
	return t
}

// Quiet reports whether nothing is about to change by itself: no action in flight.
func (c *Cloud) Quiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	return len(c.pending) == 0
}

// ServerHost returns the host the cloud places a server on.
func (c *Cloud) ServerHost(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.servers[id]; ok {
		return s.host
	}
	return ""
}

// SetAPIDown makes every API call fail as unreachable (a controller partition).
func (c *Cloud) SetAPIDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// FailNext makes the next calls of op fail with the given errors, in order.
func (c *Cloud) FailNext(op string, errs ...error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing[op] = append(c.failing[op], errs...)
}

// Calls returns the number of API calls per operation so far.
func (c *Cloud) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Copies returns, per server, the hosts where a copy really runs (the truth the
// API does not show).
func (c *Cloud) Copies() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	out := make(map[string][]string, len(c.servers))
	for id, s := range c.servers {
		out[id] = slices.Clone(s.copies)
	}
	return out
}

// MultiCopies returns the servers that run on more than one host, with those hosts.
func (c *Cloud) MultiCopies() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	var out map[string][]string
	for id, s := range c.servers {
		if len(s.copies) > 1 {
			if out == nil {
				out = map[string][]string{}
			}
			out[id] = slices.Clone(s.copies)
		}
	}
	return out
}

// Server returns a server's view as the API would show it.
func (c *Cloud) Server(id string) (model.Server, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok {
		return model.Server{}, false
	}
	return s.view(), true
}

// ServersOn returns the servers assigned to a host or with a copy running on it,
// with their views, sorted by ID.
func (c *Cloud) ServersOn(name string) []model.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	var out []model.Server
	for _, id := range slices.Sorted(maps.Keys(c.servers)) {
		s := c.servers[id]
		if !s.deleted && (s.host == name || slices.Contains(s.copies, name)) {
			out = append(out, s.view())
		}
	}
	return out
}

// HostPower returns a host's true power state.
func (c *Cloud) HostPower(name string) model.Power {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[name]; ok {
		return h.power
	}
	return model.PowerUnknown
}

// evacuationRecordsLocked is Nova's refusal to force a host up while 'done'
// evacuation migration records from it remain: until its restarted compute has
// cleaned them up (CleanupDelay after it starts), or forever when the compute
// started before those evacuations ended (it cleans up only at its start).
func (c *Cloud) evacuationRecordsLocked(h *host) error {
	n := 0
	for _, m := range c.migrations {
		if m.kind == "evacuation" && m.source == h.name && m.status == "done" {
			n++
		}
	}
	if n > 0 || c.now().Before(h.cleanupUntil) {
		return fmt.Errorf("force-up %s: %w: Unable to force up host %s as 'done' evacuation migration records remain", h.name, cloud.ErrConflict, h.name)
	}
	return nil
}

// SetCleanupDelay changes how long a compute that starts from now on takes to
// clean up its evacuation records (Config.CleanupDelay).
func (c *Cloud) SetCleanupDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.CleanupDelay = d
}
