package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// groups holds the simulated Heat stacks and Nova server groups. As in the real
// cloud, a stack's members are Nova server IDs (their physical_resource_id), which
// an evacuation keeps; neither Heat nor the server group notices a dead host.
type groups struct {
	seq     int
	stacks  map[string]*cloud.Stack     // by ID
	servers map[string]*cloud.NovaGroup // by ID
}

var _ cloud.Groups = (*Cloud)(nil)

// CreateStack makes a stack of the given servers with tags; it returns its ID.
func (c *Cloud) CreateStack(name string, tags []string, servers ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grp.stacks == nil {
		c.grp.stacks = map[string]*cloud.Stack{}
	}
	c.grp.seq++
	id := fmt.Sprintf("stack-%04d", c.grp.seq)
	c.grp.stacks[id] = &cloud.Stack{ID: id, Name: name, Tags: slices.Clone(tags), Servers: sorted(servers)}
	return id
}

// SetStackServers replaces a stack's servers (a stack update that adds or removes
// OS::Nova::Server resources; the removed servers are left running here).
func (c *Cloud) SetStackServers(ref string, servers ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stackLocked(ref)
	if st == nil {
		return fmt.Errorf("stack %s: %w", ref, cloud.ErrNotFound)
	}
	st.Servers = sorted(servers)
	return nil
}

// CreateServerGroup makes a Nova server group of the given servers; it returns its ID.
func (c *Cloud) CreateServerGroup(name, policy string, servers ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grp.servers == nil {
		c.grp.servers = map[string]*cloud.NovaGroup{}
	}
	c.grp.seq++
	id := fmt.Sprintf("sg-%04d", c.grp.seq)
	c.grp.servers[id] = &cloud.NovaGroup{ID: id, Name: name, Policy: policy, Members: sorted(servers)}
	return id
}

// SetMetadata sets (value != "") or unsets one metadata key of a server. Like Nova
// it leaves the server's updated time alone (measured on the peer: the metadata
// lives in a table of its own), so only a full listing shows the change.
func (c *Cloud) SetMetadata(id, key, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return fmt.Errorf("metadata of %s: %w", id, cloud.ErrNotFound)
	}
	m := s.meta.Map()
	if m == nil {
		m = map[string]string{}
	}
	if value == "" {
		delete(m, key)
	} else {
		m[key] = value
	}
	s.meta = model.MetadataOf(m)
	return nil
}

// Stack implements cloud.Groups.
func (c *Cloud) Stack(ctx context.Context, ref string) (cloud.Stack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("stack-show"); err != nil {
		return cloud.Stack{}, err
	}
	st := c.stackLocked(ref)
	if st == nil {
		return cloud.Stack{}, fmt.Errorf("stack %s: %w", ref, cloud.ErrNotFound)
	}
	return clone(*st), nil
}

// TaggedStacks implements cloud.Groups.
func (c *Cloud) TaggedStacks(ctx context.Context, tag string) ([]cloud.Stack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("stack-list"); err != nil {
		return nil, err
	}
	var out []cloud.Stack
	for _, id := range slices.Sorted(maps.Keys(c.grp.stacks)) {
		if st := c.grp.stacks[id]; slices.Contains(st.Tags, tag) {
			out = append(out, clone(*st))
		}
	}
	return out, nil
}

// ServerGroup implements cloud.Groups.
func (c *Cloud) ServerGroup(ctx context.Context, ref string) (cloud.NovaGroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("server-group-show"); err != nil {
		return cloud.NovaGroup{}, err
	}
	for _, id := range slices.Sorted(maps.Keys(c.grp.servers)) {
		if g := c.grp.servers[id]; g.ID == ref || g.Name == ref {
			out := *g
			out.Members = c.liveLocked(g.Members)
			return out, nil
		}
	}
	return cloud.NovaGroup{}, fmt.Errorf("server group %s: %w", ref, cloud.ErrNotFound)
}

func (c *Cloud) stackLocked(ref string) *cloud.Stack {
	if st, ok := c.grp.stacks[ref]; ok {
		return st
	}
	for _, id := range slices.Sorted(maps.Keys(c.grp.stacks)) {
		if st := c.grp.stacks[id]; st.Name == ref {
			return st
		}
	}
	return nil
}

// liveLocked drops deleted servers (Nova removes them from their group).
func (c *Cloud) liveLocked(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
		s, ok := c.servers[id]
		return !ok || s.deleted
	})
}

func clone(st cloud.Stack) cloud.Stack {
	st.Tags, st.Servers = slices.Clone(st.Tags), slices.Clone(st.Servers)
	return st
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
