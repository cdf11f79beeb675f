package metrics

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Transport returns next counting each request in vigil_cloud_api_calls_total by
// method, path template and status (the HTTP code, or "error" without an answer).
// Give it to the OpenStack driver (openstack.Config.Transport).
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	return &transport{next: next, m: m}
}

type transport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.cloudCalls.WithLabelValues(PathTemplate(r.URL.Path), r.Method, status).Inc()
	return resp, err
}

// words are the path segments of the OpenStack APIs Vigil calls (Keystone, Nova,
// Placement, Heat, Neutron, Cinder) and of the endpoints' usual prefixes: kept in
// a template. Every other segment is an ID or a name (a server's UUID, a project,
// a stack's name, a host) and becomes {id}: the label's values stay few whatever
// the cloud holds.
var words = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`
		identity compute placement orchestration network networking volume volumev3 block-storage image
		auth tokens projects users roles
		servers detail action os-instance-actions os-services os-hypervisors os-server-groups os-availability-zone
		os-migrations migrations os-volume_attachments os-interface flavors images limits
		resource_providers inventories usages allocations allocation_candidates traits aggregates
		stacks resources events outputs
		ports networks subnets attachments volumes
	`) {
		words[w] = true
	}
}

// version matches an API version segment: v2.1, v3, v1.0.
var version = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)

// PathTemplate reduces an HTTP path to its template: /v2.1/servers/9f3c.../action
// is /v2.1/servers/{id}/action. Only known words and versions survive.
func PathTemplate(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if !words[s] && !version.MatchString(s) && s != "" {
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// SimCall counts one call of the simulated cloud (cloud/sim's Config.OnCall):
// endpoint is its operation, method SIM, status ok or error.
func (m *Metrics) SimCall(op string, err error) {
	status := "ok"
	if err != nil {
		status = "error"
	}
	m.cloudCalls.WithLabelValues(op, "SIM", status).Inc()
}

// Fencer returns f counting each BMC call in vigil_bmc_calls_total; it offers
// cloud.Identifier when f does (the engine checks identities only then). nil
// stays nil: no host has a fence device.
func (m *Metrics) Fencer(f cloud.Fencer) cloud.Fencer {
	if f == nil {
		return nil
	}
	c := &fencer{f: f, m: m}
	if id, ok := f.(cloud.Identifier); ok {
		return &identFencer{fencer: c, id: id}
	}
	return c
}

type fencer struct {
	f cloud.Fencer
	m *Metrics
}

func (c *fencer) count(op string, err error) {
	outcome := "ok"
	if err != nil && !errors.Is(err, cloud.ErrNoIdentity) { // it answered, without a GUID
		outcome = "error"
	}
	c.m.bmcCalls.WithLabelValues(op, outcome).Inc()
}

// CanFence reads the configuration, not a BMC: not counted.
func (c *fencer) CanFence(host string) bool { return c.f.CanFence(host) }

func (c *fencer) PowerOff(ctx context.Context, host string) error {
	err := c.f.PowerOff(ctx, host)
	c.count("power-off", err)
	return err
}

func (c *fencer) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	p, err := c.f.PowerStatus(ctx, host)
	c.count("power-status", err)
	return p, err
}

type identFencer struct {
	*fencer
	id cloud.Identifier
}

func (c *identFencer) Identity(ctx context.Context, host string) (string, error) {
	v, err := c.id.Identity(ctx, host)
	c.count("identity", err)
	return v, err
}
