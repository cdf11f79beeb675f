package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
)

// Heat's stacks and Nova's server groups, which clusters may follow (cloud.Groups).
// A stack's servers are its OS::Nova::Server resources' physical_resource_id: the
// Nova server ID, which an evacuation keeps (Heat notices neither the dead host
// nor the evacuation: its resource list is unchanged). Nested stacks are read too
// (nested_depth), so a server of a ResourceGroup counts.

var _ cloud.Groups = (*Driver)(nil)

// nestedDepth bounds how deep nested stacks are read.
const nestedDepth = 5

// heatScope remembers whether Heat lets Vigil list every project's stacks: its
// default policy denies stacks:global_index to everyone (admin included), and
// then only the stacks of Vigil's own project are seen.
type heatScope struct {
	mu      sync.Mutex
	ownOnly bool
}

type heatStack struct {
	ID   string   `json:"id"`
	Name string   `json:"stack_name"`
	Tags []string `json:"tags"`
}

type heatResource struct {
	Name       string `json:"resource_name"`
	Type       string `json:"resource_type"`
	PhysicalID string `json:"physical_resource_id"`
}

// orchestration returns Heat's client, or ErrNoService.
func (d *Driver) orchestration() (*gophercloud.ServiceClient, error) {
	if d.orch == nil {
		return nil, fmt.Errorf("cloud %q: %w: no orchestration (Heat) endpoint in the catalog: %v", d.cloud, cloud.ErrNoService, d.orchErr)
	}
	return d.orch, nil
}

// getOn is get on another service's client.
func (d *Driver) getOn(ctx context.Context, c *gophercloud.ServiceClient, op, u string, out any) error {
	ctx, cancel := context.WithTimeout(withOp(ctx, op), d.cfg.Timeout)
	defer cancel()
	_, err := c.Get(ctx, u, out, &gophercloud.RequestOpts{OkCodes: []int{200}})
	return classify(err)
}

// Stack implements cloud.Groups: GET /stacks/{name or id} (Heat redirects to the
// stack's full identity), then its resources.
func (d *Driver) Stack(ctx context.Context, ref string) (cloud.Stack, error) {
	c, err := d.orchestration()
	if err != nil {
		return cloud.Stack{}, err
	}
	var body struct {
		Stack heatStack `json:"stack"`
	}
	if err := d.getOn(ctx, c, "stack-show", c.ServiceURL("stacks", url.PathEscape(ref)), &body); err != nil {
		return cloud.Stack{}, fmt.Errorf("Heat stack %s: %w", ref, err)
	}
	return d.withServers(ctx, c, body.Stack)
}

// TaggedStacks implements cloud.Groups: GET /stacks?tags=TAG (every project's when
// Heat's policy allows it), then each stack's resources.
func (d *Driver) TaggedStacks(ctx context.Context, tag string) ([]cloud.Stack, error) {
	c, err := d.orchestration()
	if err != nil {
		return nil, err
	}
	var list struct {
		Stacks []heatStack `json:"stacks"`
	}
	q := url.Values{"tags": {tag}}
	d.heat.mu.Lock()
	global := !d.heat.ownOnly
	d.heat.mu.Unlock()
	if global {
		q.Set("global_tenant", "true")
	}
	err = d.getOn(ctx, c, "stack-list", c.ServiceURL("stacks")+"?"+q.Encode(), &list)
	var he *httpError
	if global && errors.As(err, &he) && he.Status == http.StatusForbidden {
		d.heat.mu.Lock()
		d.heat.ownOnly = true
		d.heat.mu.Unlock()
		q.Del("global_tenant")
		err = d.getOn(ctx, c, "stack-list", c.ServiceURL("stacks")+"?"+q.Encode(), &list)
	}
	if err != nil {
		return nil, fmt.Errorf("list the Heat stacks tagged %s: %w", tag, err)
	}
	var out []cloud.Stack
	for _, hs := range list.Stacks {
		if !slices.Contains(hs.Tags, tag) { // Heat filters; an old one may not
			continue
		}
		st, err := d.withServers(ctx, c, hs)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// withServers reads a stack's OS::Nova::Server resources, nested stacks included.
func (d *Driver) withServers(ctx context.Context, c *gophercloud.ServiceClient, hs heatStack) (cloud.Stack, error) {
	var res struct {
		Resources []heatResource `json:"resources"`
	}
	u := c.ServiceURL("stacks", url.PathEscape(hs.Name), url.PathEscape(hs.ID), "resources") + fmt.Sprintf("?nested_depth=%d", nestedDepth)
	if err := d.getOn(ctx, c, "stack-resources", u, &res); err != nil {
		return cloud.Stack{}, fmt.Errorf("resources of Heat stack %s (%s): %w", hs.Name, hs.ID, err)
	}
	st := cloud.Stack{ID: hs.ID, Name: hs.Name, Tags: hs.Tags, Servers: []string{}}
	for _, r := range res.Resources {
		// A server not created yet (or being replaced) has no physical id.
		if r.Type == "OS::Nova::Server" && r.PhysicalID != "" {
			st.Servers = append(st.Servers, r.PhysicalID)
		}
	}
	slices.Sort(st.Servers)
	st.Servers = slices.Compact(st.Servers)
	return st, nil
}

type novaGroup struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Policy   string   `json:"policy"`   // 2.64+
	Policies []string `json:"policies"` // before 2.64
	Members  []string `json:"members"`
}

func (g novaGroup) group() cloud.NovaGroup {
	p := g.Policy
	if p == "" && len(g.Policies) > 0 {
		p = strings.Join(g.Policies, ",")
	}
	return cloud.NovaGroup{ID: g.ID, Name: g.Name, Policy: p, Members: slices.Sorted(slices.Values(g.Members))}
}

// ServerGroup implements cloud.Groups: GET /os-server-groups/{id}, or by name in
// every project's groups.
func (d *Driver) ServerGroup(ctx context.Context, ref string) (cloud.NovaGroup, error) {
	var one struct {
		Group novaGroup `json:"server_group"`
	}
	err := d.get(ctx, "server-group-show", d.compute.ServiceURL("os-server-groups", url.PathEscape(ref)), &one)
	if err == nil {
		return one.Group.group(), nil
	}
	if !errors.Is(err, cloud.ErrNotFound) {
		return cloud.NovaGroup{}, fmt.Errorf("server group %s: %w", ref, err)
	}
	var list struct {
		Groups []novaGroup `json:"server_groups"`
	}
	q := url.Values{"all_projects": {"true"}, "limit": {"1000"}}
	if err := d.get(ctx, "server-group-list", d.compute.ServiceURL("os-server-groups")+"?"+q.Encode(), &list); err != nil {
		return cloud.NovaGroup{}, fmt.Errorf("server group %s: %w", ref, err)
	}
	var found []novaGroup
	for _, g := range list.Groups {
		if g.Name == ref {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return cloud.NovaGroup{}, cloud.Terminal(fmt.Errorf("server group %s: %w: no group has that ID or name", ref, cloud.ErrNotFound))
	case 1:
		return found[0].group(), nil
	}
	return cloud.NovaGroup{}, cloud.Terminal(fmt.Errorf("server group %s: %d groups have that name: give its ID", ref, len(found)))
}
