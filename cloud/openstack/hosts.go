package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack/novatime"
	"github.com/vigil-ha/vigil/model"
)

type novaService struct {
	ID         any    `json:"id"` // a UUID string at 2.53+
	Binary     string `json:"binary"`
	Host       string `json:"host"`
	Zone       string `json:"zone"`
	Status     string `json:"status"` // enabled | disabled
	State      string `json:"state"`  // up | down
	UpdatedAt  string `json:"updated_at"`
	ForcedDown bool   `json:"forced_down"`
}

func (s novaService) uuid() string {
	if id, ok := s.ID.(string); ok {
		return id
	}
	return fmt.Sprint(s.ID)
}

func (s novaService) host() model.Host {
	h := model.Host{Name: s.Host, Segment: s.Zone, Service: model.ServiceDown,
		ForcedDown: s.ForcedDown, Disabled: s.Status == "disabled"}
	if s.State == "up" {
		h.Service = model.ServiceUp
	}
	h.LastSeenUp, _ = novatime.Parse(s.UpdatedAt)
	return h
}

func (d *Driver) lookupServices(ctx context.Context, host string) ([]novaService, error) {
	q := url.Values{"binary": {"nova-compute"}}
	if host != "" {
		q.Set("host", host)
	}
	var doc struct {
		Services []novaService `json:"services"`
	}
	if err := d.get(ctx, "list-hosts", d.compute.ServiceURL("os-services")+"?"+q.Encode(), &doc); err != nil {
		return nil, err
	}
	d.mu.Lock()
	for _, s := range doc.Services {
		d.services[s.Host] = s.uuid()
	}
	d.mu.Unlock()
	return doc.Services, nil
}

// ListHosts implements cloud.Lister with one GET /os-services?binary=nova-compute.
// LastSeenUp is the service's updated_at (its last report); Segment is its
// availability zone.
func (d *Driver) ListHosts(ctx context.Context) ([]model.Host, error) {
	svcs, err := d.lookupServices(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list compute services of cloud %q: %w", d.cloud, err)
	}
	out := make([]model.Host, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, s.host())
	}
	d.withFree(ctx, out)
	return out, nil
}

// ForceDown implements cloud.Actor: PUT /os-services/{uuid} {"forced_down": down}
// (2.53+). gophercloud cannot send forced_down false, hence this builder.
//
// Nova refuses to force a host up while "done" evacuation migration records
// remain (until the restarted compute has cleaned up, a few seconds): that
// refusal is a retryable ErrConflict.
func (d *Driver) ForceDown(ctx context.Context, host string, down bool) error {
	op := "force-down"
	if !down {
		op = "force-up"
	}
	d.mu.Lock()
	id := d.services[host]
	d.mu.Unlock()
	if id == "" {
		svcs, err := d.lookupServices(ctx, host)
		if err != nil {
			return fmt.Errorf("%s %s: find its nova-compute service: %w", op, host, err)
		}
		for _, s := range svcs {
			if s.Host == host {
				id = s.uuid()
			}
		}
		if id == "" {
			return cloud.Terminal(fmt.Errorf("%s %s: cloud %q has no nova-compute service on host %s: %w",
				op, host, d.cloud, host, cloud.ErrNotFound))
		}
	}
	err := d.send(ctx, op, http.MethodPut, d.compute.ServiceURL("os-services", id), map[string]any{"forced_down": down})
	if err == nil {
		return nil
	}
	if code, msg := statusOf(err); code == http.StatusBadRequest && strings.Contains(msg, "evacuation migration records remain") {
		return fmt.Errorf("force-up %s refused for now (the restarted compute has not yet cleaned up evacuated servers; retry in a few seconds): %w: %s",
			host, cloud.ErrConflict, msg)
	}
	if errors.Is(err, cloud.ErrNotFound) {
		d.mu.Lock()
		delete(d.services, host) // a re-registered service has a new UUID
		d.mu.Unlock()
	}
	return fmt.Errorf("%s %s: %w", op, host, err)
}
