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
		s.status, s.task, s.pending = model.StatusError, "", nil
		s.copies = nil
	})
}

// PowerOffBehindBack stops a server without its owner asking: SHUTOFF, intent still on.
func (c *Cloud) PowerOffBehindBack(id string) error {
	return c.withServer(id, func(s *server) {
		s.status, s.task, s.pending = model.StatusShutoff, "", nil
		s.copies = nil
	})
}

// Stop is the owner stopping a server through the API: SHUTOFF with intent off.
func (c *Cloud) Stop(id string) error {
	return c.withServer(id, func(s *server) {
		s.status, s.intent, s.copies = model.StatusShutoff, model.IntentOff, nil
		s.actions = append(s.actions, model.InstanceAction{Action: cloud.ActionStop, Start: c.now()})
	})
}

// Delete removes a server, as its owner would.
func (c *Cloud) Delete(id string) error {
	return c.withServer(id, func(s *server) { s.deleted, s.copies = true, nil })
}

// BreakServer makes every later action on the server end in ERROR (true) or work again.
func (c *Cloud) BreakServer(id string, broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken[id] = broken
}

func (c *Cloud) withServer(id string, f func(*server)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return fmt.Errorf("server %s: %w", id, cloud.ErrNotFound)
	}
	f(s)
	s.updated = c.now()
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
	was := h.reporting()
	f(h)
	if !was && h.reporting() {
		h.since, h.lastSeen = c.now(), c.now()
	}
	return nil
}

// KillHost is a power loss: the host and every copy on it stop; Nova notices only
// when the service's heartbeats are overdue.
func (c *Cloud) KillHost(name string) error {
	return c.withHost(name, c.powerOffLocked)
}

// PowerOnHost restores power: the compute starts, and like Nova's init_host it
// destroys the local copies of servers that were evacuated away meanwhile.
func (c *Cloud) PowerOnHost(name string) error {
	return c.withHost(name, func(h *host) {
		h.power, h.computeAlive = model.PowerOn, true
		for _, s := range c.servers {
			if s.host != name {
				s.copies = slices.DeleteFunc(s.copies, func(x string) bool { return x == name })
			} else if !s.deleted && len(s.copies) == 0 && s.status == model.StatusActive {
				// Nova's power-state sync: found not running, the instance is stopped.
				s.status, s.task, s.updated = model.StatusShutoff, "", c.now()
			}
		}
	})
}

// IsolateHost cuts the host off the controller: it looks down, its VMs keep running.
func (c *Cloud) IsolateHost(name string, isolated bool) error {
	return c.withHost(name, func(h *host) { h.isolated = isolated })
}

// SetBMC makes a host's BMC unreachable (down) or accept power-off without acting (lies).
func (c *Cloud) SetBMC(name string, down, lies bool) error {
	return c.withHost(name, func(h *host) { h.bmcDown, h.bmcLies = down, lies })
}

// SetDisabled disables or enables a host's compute service for scheduling.
func (c *Cloud) SetDisabled(name string, disabled bool) error {
	return c.withHost(name, func(h *host) { h.disabled = disabled })
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
	Reporting bool      // alive and reaching the controller
	Since     time.Time // reporting continuously since then
	Segment   string
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
	return HostTruth{Power: h.power, Reporting: h.reporting(), Since: h.since, Segment: h.segment}
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

// HostPower returns a host's true power state.
func (c *Cloud) HostPower(name string) model.Power {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[name]; ok {
		return h.power
	}
	return model.PowerUnknown
}
