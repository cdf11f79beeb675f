package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Resources and server groups, as Nova's Placement service and its scheduler keep
// them: a host's inventory (total, reserved, allocation ratio) less what the
// servers on it (or on their way to it) use; strict server groups filter where the
// scheduler may place an evacuated member. A target named by the caller is checked
// too (room and group), as Nova 2.68+ does with its scheduler and as the target
// compute does with the group, even for a forced host (measured on Nova 26).

type hostRes struct {
	total, reserved    model.Resources
	cpuRatio, ramRatio float64
}

var _ cloud.GroupLister = (*Cloud)(nil)

// SetHostResources gives a host an inventory: total and reserved resources, and
// the CPU allocation ratio (RAM and disk are not overcommitted). A host without
// one has unlimited room (only its slot capacity counts).
func (c *Cloud) SetHostResources(name string, total, reserved model.Resources, cpuRatio float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res == nil {
		c.res = map[string]hostRes{}
	}
	c.res[name] = hostRes{total: total, reserved: reserved, cpuRatio: cpuRatio, ramRatio: 1}
}

// SetFlavor gives a server its flavor's resources.
func (c *Cloud) SetFlavor(id string, r model.Resources) error {
	return c.withServer(id, func(s *server) { s.flavor = r })
}

// AddServerGroup creates a server group with its members and returns its ID.
func (c *Cloud) AddServerGroup(name, policy string, members ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := fmt.Sprintf("grp-%03d", len(c.groups)+1)
	c.groups = append(c.groups, model.ServerGroup{ID: id, Name: name, Policy: policy, Members: slices.Clone(members)})
	return id
}

// ServerGroups returns the groups (the truth, for checkers).
func (c *Cloud) ServerGroups() []model.ServerGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groupsLocked()
}

func (c *Cloud) groupsLocked() []model.ServerGroup {
	out := make([]model.ServerGroup, 0, len(c.groups))
	for _, g := range c.groups {
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool {
			s, ok := c.servers[id]
			return !ok || s.deleted
		})
		out = append(out, g)
	}
	return out
}

// ListServerGroups implements cloud.GroupLister (GET /os-server-groups?all_projects=True).
func (c *Cloud) ListServerGroups(ctx context.Context) ([]model.ServerGroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("list-server-groups"); err != nil {
		return nil, err
	}
	return c.groupsLocked(), nil
}

// Free returns what Placement counts free on a host, and whether it has an inventory.
func (c *Cloud) Free(name string) (model.Resources, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.freeLocked(name)
}

func (c *Cloud) freeLocked(name string) (model.Resources, bool) {
	r, ok := c.res[name]
	if !ok {
		return model.Resources{}, false
	}
	var used model.Resources
	for _, s := range c.servers {
		if s.deleted {
			continue
		}
		if s.host == name || slices.ContainsFunc(s.work, func(w *work) bool { return w.dest == name }) {
			used = used.Add(s.flavor)
		}
	}
	cap := func(total, reserved int, ratio float64) int { return int(float64(total-reserved) * ratio) }
	return model.Resources{
		VCPUs:    cap(r.total.VCPUs, r.reserved.VCPUs, r.cpuRatio) - used.VCPUs,
		MemoryMB: cap(r.total.MemoryMB, r.reserved.MemoryMB, r.ramRatio) - used.MemoryMB,
		DiskGB:   cap(r.total.DiskGB, r.reserved.DiskGB, 1) - used.DiskGB,
	}, true
}

// roomLocked reports whether s fits on host name (always, without an inventory).
func (c *Cloud) roomLocked(name string, s *server) bool {
	free, ok := c.freeLocked(name)
	return !ok || free.Fits(s.flavor)
}

// groupAllowsLocked is the scheduler's ServerGroupAntiAffinityFilter and
// ServerGroupAffinityFilter for s on host name: the group's hosts are those its
// other members are on (Nova's instance.host, which for a member being evacuated
// is still its source until the conductor moves it).
func (c *Cloud) groupAllowsLocked(s *server, name string) bool {
	for _, g := range c.groups {
		if !g.Strict() || !slices.Contains(g.Members, s.id) {
			continue
		}
		var hosts []string
		for _, m := range g.Members {
			if o, ok := c.servers[m]; ok && m != s.id && !o.deleted {
				hosts = append(hosts, o.host)
			}
		}
		switch g.Policy {
		case model.GroupAntiAffinity:
			if slices.Contains(hosts, name) {
				return false
			}
		case model.GroupAffinity:
			if len(hosts) > 0 && !slices.Contains(hosts, name) {
				return false
			}
		}
	}
	return true
}

// LastAction returns the last action the cloud recorded on a server (the truth, for
// checkers: no API call).
func (c *Cloud) LastAction(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.servers[id]; ok && len(s.actions) > 0 {
		return s.actions[len(s.actions)-1].Action
	}
	return ""
}
