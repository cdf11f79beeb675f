package vigil

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// novaCloud is the bench's own admin view of the cloud, independent of Vigil's
// driver: how it boots the servers of a round, acts as the oracle, notifies
// Masakari, watches Nova and repairs a host after a round.
type novaCloud struct {
	compute   *gophercloud.ServiceClient
	placement *gophercloud.ServiceClient // nil: no placement endpoint (the disabled trait is not checked)
	image     *gophercloud.ServiceClient
	masakari  *gophercloud.ServiceClient // nil: no instance-ha endpoint in the catalog
	provider  *gophercloud.ProviderClient
}

func newNovaCloud(ctx context.Context, cloudName, cloudsFile string) (*novaCloud, error) {
	file, err := findCloudsFileForBench(cloudsFile)
	if err != nil {
		return nil, err
	}
	ao, eo, _, err := clouds.Parse(clouds.WithLocations(file), clouds.WithCloudName(cloudName))
	if err != nil {
		return nil, fmt.Errorf("bench nova: clouds.yaml entry %q in %s: %w", cloudName, file, err)
	}
	ao.AllowReauth = true
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	provider, err := gopenstack.AuthenticatedClient(actx, ao)
	if err != nil {
		return nil, fmt.Errorf("bench nova: authenticate as %q: %w", cloudName, err)
	}
	provider.HTTPClient = http.Client{Timeout: 20 * time.Second}
	c := &novaCloud{provider: provider}
	if c.compute, err = gopenstack.NewComputeV2(provider, eo); err != nil {
		return nil, fmt.Errorf("bench nova: compute endpoint of %q: %w", cloudName, err)
	}
	c.compute.Microversion = "2.53" // services by UUID, evacuate without host, "networks": "none"
	if c.image, err = gopenstack.NewImageV2(provider, eo); err != nil {
		return nil, fmt.Errorf("bench nova: image endpoint of %q: %w", cloudName, err)
	}
	if pc, err := gopenstack.NewPlacementV1(provider, eo); err == nil {
		pc.Microversion = "1.6"
		c.placement = pc
	}
	eo.ApplyDefaults("instance-ha")
	if u, err := provider.EndpointLocator(eo); err == nil {
		c.masakari = &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: strings.TrimSuffix(u, "/") + "/", Type: "instance-ha",
			MoreHeaders: map[string]string{"OpenStack-API-Version": "instance-ha 1.2"}}
	}
	return c, nil
}

// findCloudsFileForBench: the file given, else $OS_CLIENT_CONFIG_FILE, else
// gophercloud's own search (an empty location).
func findCloudsFileForBench(explicit string) (string, error) {
	if explicit == "" {
		explicit = os.Getenv("OS_CLIENT_CONFIG_FILE")
	}
	if explicit == "" {
		return "", errors.New("bench nova: no clouds.yaml: give --os-client-config-file or set OS_CLIENT_CONFIG_FILE")
	}
	return explicit, nil
}

// imageID finds an image by name.
func (c *novaCloud) imageID(ctx context.Context, name string) (string, error) {
	var doc struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	if _, err := c.image.Get(ctx, c.image.ServiceURL("images")+"?name="+url.QueryEscape(name), &doc, nil); err != nil {
		return "", fmt.Errorf("find image %q: %w", name, err)
	}
	if len(doc.Images) == 0 {
		return "", fmt.Errorf("no image named %q (give --image)", name)
	}
	return doc.Images[0].ID, nil
}

// boot asks for n servers named name-1..n, pinned to host (admin names a host in
// the zone as "zone:host"), without network.
func (c *novaCloud) boot(ctx context.Context, name string, n int, zone, host, flavor, image string) error {
	srv := map[string]any{"name": name, "flavorRef": flavor, "imageRef": image,
		"networks": "none", "min_count": n, "max_count": n, "availability_zone": zone + ":" + host}
	if _, err := c.compute.Post(ctx, c.compute.ServiceURL("servers"), map[string]any{"server": srv}, nil, nil); err != nil {
		return fmt.Errorf("boot %d servers %s on %s: %w", n, name, host, err)
	}
	return nil
}

type benchServer struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Host      string  `json:"OS-EXT-SRV-ATTR:host"`
	TaskState *string `json:"OS-EXT-STS:task_state"`
}

// settled: ACTIVE with no task under way.
func (s benchServer) settled() bool {
	return s.Status == "ACTIVE" && (s.TaskState == nil || *s.TaskState == "")
}

// servers lists the servers named prefix* of every project, sorted by name.
func (c *novaCloud) servers(ctx context.Context, prefix string) ([]benchServer, error) {
	q := url.Values{"all_tenants": {"1"}, "name": {"^" + prefix}}
	var doc struct {
		Servers []benchServer `json:"servers"`
	}
	if _, err := c.compute.Get(ctx, c.compute.ServiceURL("servers", "detail")+"?"+q.Encode(), &doc, nil); err != nil {
		return nil, fmt.Errorf("list servers %s*: %w", prefix, err)
	}
	slices.SortFunc(doc.Servers, func(a, b benchServer) int { return strings.Compare(a.Name, b.Name) })
	return doc.Servers, nil
}

// deleteAll deletes the servers named prefix* and waits until none is listed.
func (c *novaCloud) deleteAll(ctx context.Context, prefix string, within time.Duration) error {
	ss, err := c.servers(ctx, prefix)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if _, err := c.compute.Delete(ctx, c.compute.ServiceURL("servers", s.ID), nil); err != nil {
			return fmt.Errorf("delete server %s (%s): %w", s.Name, s.ID, err)
		}
	}
	return pollUntil(ctx, within, "servers "+prefix+"* deleted", func() (bool, string, error) {
		ss, err := c.servers(ctx, prefix)
		return err == nil && len(ss) == 0, fmt.Sprintf("%d left", len(ss)), err
	})
}

func (c *novaCloud) action(ctx context.Context, id string, body map[string]any) error {
	_, err := c.compute.Post(ctx, c.compute.ServiceURL("servers", id, "action"), body, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}})
	return err
}

type benchService struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	State  string `json:"state"`
	Status string `json:"status"`
	Forced bool   `json:"forced_down"`
}

func (s benchService) usable() bool { return s.State == "up" && !s.Forced && s.Status == "enabled" }

func (c *novaCloud) service(ctx context.Context, host string) (benchService, error) {
	var doc struct {
		Services []benchService `json:"services"`
	}
	q := url.Values{"binary": {"nova-compute"}, "host": {host}}
	if _, err := c.compute.Get(ctx, c.compute.ServiceURL("os-services")+"?"+q.Encode(), &doc, nil); err != nil {
		return benchService{}, fmt.Errorf("nova-compute service of %s: %w", host, err)
	}
	if len(doc.Services) != 1 {
		return benchService{}, fmt.Errorf("%d nova-compute services on %s, want 1", len(doc.Services), host)
	}
	return doc.Services[0], nil
}

func (c *novaCloud) putService(ctx context.Context, id string, body map[string]any) error {
	_, err := c.compute.Put(ctx, c.compute.ServiceURL("os-services", id), body, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
	return err
}

// disabledTrait: the host's resource provider carries COMPUTE_STATUS_DISABLED, so
// placement offers no room on it (a compute restarted while disabled keeps it until
// Nova tells it it is enabled, or its next periodic update).
func (c *novaCloud) disabledTrait(ctx context.Context, host string) (bool, error) {
	if c.placement == nil {
		return false, nil
	}
	var rps struct {
		ResourceProviders []struct {
			UUID string `json:"uuid"`
		} `json:"resource_providers"`
	}
	if _, err := c.placement.Get(ctx, c.placement.ServiceURL("resource_providers")+"?name="+url.QueryEscape(host), &rps, nil); err != nil {
		return false, fmt.Errorf("resource provider of %s: %w", host, err)
	}
	if len(rps.ResourceProviders) == 0 {
		return false, fmt.Errorf("no resource provider named %s", host)
	}
	var tr struct {
		Traits []string `json:"traits"`
	}
	if _, err := c.placement.Get(ctx, c.placement.ServiceURL("resource_providers", rps.ResourceProviders[0].UUID, "traits"), &tr, nil); err != nil {
		return false, fmt.Errorf("traits of %s: %w", host, err)
	}
	return slices.Contains(tr.Traits, "COMPUTE_STATUS_DISABLED"), nil
}

// masakariHost is a host of one of Masakari's segments.
type masakariHost struct {
	Segment       string `json:"-"`
	UUID          string `json:"uuid"`
	Name          string `json:"name"`
	OnMaintenance bool   `json:"on_maintenance"`
}

// masakariHostOf finds host in Masakari's segments (the bench protects nothing in
// Masakari itself: its segment is the operator's, as masakari's peer sets it up).
func (c *novaCloud) masakariHostOf(ctx context.Context, host string) (masakariHost, error) {
	if c.masakari == nil {
		return masakariHost{}, errors.New("no instance-ha (Masakari) endpoint in the catalog: start ../shared/peers/masakari/up.sh")
	}
	var segs struct {
		Segments []struct {
			UUID    string `json:"uuid"`
			Name    string `json:"name"`
			Enabled *bool  `json:"enabled"`
		} `json:"segments"`
	}
	if _, err := c.masakari.Get(ctx, c.masakari.ServiceURL("segments"), &segs, nil); err != nil {
		return masakariHost{}, fmt.Errorf("Masakari's segments: %w", err)
	}
	for _, s := range segs.Segments {
		if s.Enabled != nil && !*s.Enabled {
			continue
		}
		var hs struct {
			Hosts []masakariHost `json:"hosts"`
		}
		if _, err := c.masakari.Get(ctx, c.masakari.ServiceURL("segments", s.UUID, "hosts"), &hs, nil); err != nil {
			return masakariHost{}, fmt.Errorf("hosts of Masakari's segment %s: %w", s.Name, err)
		}
		for _, h := range hs.Hosts {
			if h.Name == host {
				h.Segment = s.UUID
				return h, nil
			}
		}
	}
	return masakariHost{}, fmt.Errorf("%s is in no enabled Masakari segment: add it (../shared/peers/masakari/up.sh does)", host)
}

// unmaintain clears on_maintenance, which Masakari sets when it handles a host
// failure and never clears (it would refuse the next notification for the host).
func (c *novaCloud) unmaintain(ctx context.Context, h masakariHost) error {
	if !h.OnMaintenance {
		return nil
	}
	_, err := c.masakari.Put(ctx, c.masakari.ServiceURL("segments", h.Segment, "hosts", h.UUID),
		map[string]any{"host": map[string]any{"on_maintenance": false}}, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return fmt.Errorf("clear Masakari's on_maintenance of %s: %w", h.Name, err)
	}
	return nil
}

// notifyHostDown posts what masakari-hostmonitor posts when pacemaker sees a node
// go offline and its IPMI check finds it powered off.
func (c *novaCloud) notifyHostDown(ctx context.Context, host string, at time.Time) (string, error) {
	body := map[string]any{"notification": map[string]any{
		"type": "COMPUTE_HOST", "hostname": host, "generated_time": at.UTC().Format("2006-01-02T15:04:05.000000"),
		"payload": map[string]string{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}}}
	var doc struct {
		Notification struct {
			UUID string `json:"notification_uuid"`
		} `json:"notification"`
	}
	if _, err := c.masakari.Post(ctx, c.masakari.ServiceURL("notifications"), body, &doc, &gophercloud.RequestOpts{OkCodes: []int{200, 202}}); err != nil {
		return "", fmt.Errorf("notify Masakari that %s is down (a 409 within 180 s of an earlier one for the host is its duplicate check): %w", host, err)
	}
	return doc.Notification.UUID, nil
}

func (c *novaCloud) notificationStatus(ctx context.Context, id string) (string, error) {
	var doc struct {
		Notification struct {
			Status string `json:"status"`
		} `json:"notification"`
	}
	if _, err := c.masakari.Get(ctx, c.masakari.ServiceURL("notifications", id), &doc, nil); err != nil {
		return "", fmt.Errorf("Masakari's notification %s: %w", id, err)
	}
	return doc.Notification.Status, nil
}

// pollUntil checks cond every 250 ms until it holds, ctx ends or within passes.
func pollUntil(ctx context.Context, within time.Duration, what string, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(within)
	var last string
	var lastErr error
	for {
		ok, state, err := cond()
		if ok {
			return nil
		}
		last, lastErr = state, err
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("%s: not within %s (last: %s; %w)", what, within, last, lastErr)
			}
			return fmt.Errorf("%s: not within %s (last: %s)", what, within, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
