package openstack

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Placement and server groups, read in bulk and cached:
//
//   - Free room per host: one GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:1
//     (placement 1.27+), whose provider_summaries give, for every compute node with
//     room for the smallest server, each resource's capacity ((total - reserved) *
//     allocation_ratio) and what is used; free = capacity - used. A provider that
//     is not in the answer has no room at all (free zero). Provider names (the
//     hypervisor host names) come from GET /resource_providers, read with it.
//     Two calls per PlacementInterval, whatever the number of hosts and servers.
//   - Server groups: GET /os-server-groups?all_projects=True, one call (per page of
//     1000) per GroupsInterval.
//
// A failed read keeps the last answer (and its time, so the planner counts what
// happened since); with none, the hosts' Free is unknown and the scheduler decides.

const placementMicroversion = "1.27"

var _ cloud.GroupLister = (*Driver)(nil)

type placementCache struct {
	free   map[string]model.Resources // host name -> free
	at     time.Time                  // when it was read (Config.Now)
	err    error
	groups []model.ServerGroup
	gAt    time.Time
}

// PlacementErr is the last error reading Placement ("" when the last read worked).
func (d *Driver) PlacementErr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pl.err == nil {
		return ""
	}
	return d.pl.err.Error()
}

// withFree sets Free, FreeKnown and FreeAt on the hosts, from Placement (cached).
func (d *Driver) withFree(ctx context.Context, hosts []model.Host) {
	if d.placement == nil {
		return
	}
	now := d.cfg.Now()
	d.mu.Lock()
	due := d.pl.free == nil || now.Sub(d.pl.at) >= d.cfg.PlacementInterval
	d.mu.Unlock()
	if due {
		free, err := d.readFree(ctx)
		d.mu.Lock()
		d.pl.err = err
		if err == nil {
			d.pl.free, d.pl.at = free, now
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pl.free == nil {
		return
	}
	for i := range hosts {
		f, ok := d.pl.free[hosts[i].Name]
		if !ok {
			continue // no resource provider of that name: not counted
		}
		hosts[i].Free, hosts[i].FreeKnown, hosts[i].FreeAt = f, true, d.pl.at
	}
}

func (d *Driver) readFree(ctx context.Context) (map[string]model.Resources, error) {
	var rps struct {
		Providers []struct {
			UUID string `json:"uuid"`
			Name string `json:"name"`
		} `json:"resource_providers"`
	}
	if err := d.getPlacement(ctx, "placement-providers", d.placement.ServiceURL("resource_providers"), &rps); err != nil {
		return nil, fmt.Errorf("list resource providers of cloud %q: %w", d.cloud, err)
	}
	var ac struct {
		Summaries map[string]struct {
			Resources map[string]struct {
				Capacity int `json:"capacity"`
				Used     int `json:"used"`
			} `json:"resources"`
		} `json:"provider_summaries"`
	}
	q := url.Values{"resources": {"VCPU:1,MEMORY_MB:1"}}
	if err := d.getPlacement(ctx, "placement-free", d.placement.ServiceURL("allocation_candidates")+"?"+q.Encode(), &ac); err != nil {
		return nil, fmt.Errorf("read free resources from the placement service of cloud %q: %w", d.cloud, err)
	}
	free := make(map[string]model.Resources, len(rps.Providers))
	for _, rp := range rps.Providers {
		s, ok := ac.Summaries[rp.UUID]
		if !ok {
			free[rp.Name] = model.Resources{} // no room for the smallest server
			continue
		}
		left := func(rc string) int { r := s.Resources[rc]; return max(r.Capacity-r.Used, 0) }
		free[rp.Name] = model.Resources{VCPUs: left("VCPU"), MemoryMB: left("MEMORY_MB"), DiskGB: left("DISK_GB")}
	}
	return free, nil
}

func (d *Driver) getPlacement(ctx context.Context, op, u string, out any) error {
	ctx, cancel := context.WithTimeout(withOp(ctx, op), d.cfg.Timeout)
	defer cancel()
	_, err := d.placement.Get(ctx, u, out, &gophercloud.RequestOpts{OkCodes: []int{200},
		MoreHeaders: map[string]string{"OpenStack-API-Version": "placement " + placementMicroversion}})
	return classify(err)
}

// ListServerGroups implements cloud.GroupLister (cached for GroupsInterval).
func (d *Driver) ListServerGroups(ctx context.Context) ([]model.ServerGroup, error) {
	now := d.cfg.Now()
	d.mu.Lock()
	if d.pl.groups != nil && now.Sub(d.pl.gAt) < d.cfg.GroupsInterval {
		g := d.pl.groups
		d.mu.Unlock()
		return g, nil
	}
	d.mu.Unlock()
	const limit = 1000
	out := []model.ServerGroup{}
	for offset := 0; ; offset += limit {
		var doc struct {
			Groups []struct {
				ID       string   `json:"id"`
				Name     string   `json:"name"`
				Policy   string   `json:"policy"`   // 2.64+
				Policies []string `json:"policies"` // before 2.64
				Members  []string `json:"members"`
			} `json:"server_groups"`
		}
		q := url.Values{"all_projects": {"True"}, "limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
		if err := d.get(ctx, "list-server-groups", d.compute.ServiceURL("os-server-groups")+"?"+q.Encode(), &doc); err != nil {
			return nil, fmt.Errorf("list server groups of cloud %q: %w", d.cloud, err)
		}
		for _, g := range doc.Groups {
			pol := g.Policy
			if pol == "" && len(g.Policies) > 0 {
				pol = g.Policies[0]
			}
			out = append(out, model.ServerGroup{ID: g.ID, Name: g.Name, Policy: pol, Members: g.Members})
		}
		if len(doc.Groups) < limit || offset > 1000*limit {
			break
		}
	}
	d.mu.Lock()
	d.pl.groups, d.pl.gAt = out, now
	d.mu.Unlock()
	return out, nil
}

// novaFlavor is the flavor embedded in a server (2.47+).
type novaFlavor struct {
	VCPUs int `json:"vcpus"`
	RAM   int `json:"ram"`
	Disk  int `json:"disk"`
}

// resources is what the server takes of its host: its flavor's vCPUs and RAM, and
// its root disk unless it boots from a volume (no image: Nova allocates no
// DISK_GB for it).
func (f novaFlavor) resources(bootFromVolume bool) model.Resources {
	r := model.Resources{VCPUs: f.VCPUs, MemoryMB: f.RAM, DiskGB: f.Disk}
	if bootFromVolume {
		r.DiskGB = 0
	}
	return r
}
