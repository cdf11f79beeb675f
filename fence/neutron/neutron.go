// Package neutron is the network half of the fabric fence: a server's Neutron ports
// set admin_state_up=false before its evacuation (a copy left running on the old
// host is cut from the network) and up again once it runs elsewhere. It never
// deletes or rebinds a port: the server keeps its port IDs and addresses.
package neutron

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/vigil-ha/vigil/cloud"
)

// Ports sets and reads the admin state of servers' ports.
type Ports struct {
	client *gophercloud.ServiceClient
}

// New returns Ports over a network (v2) service client.
func New(client *gophercloud.ServiceClient) *Ports { return &Ports{client: client} }

// binding is the part of a port gophercloud's ports.Port leaves out. It is read
// separately: ports.Port has its own UnmarshalJSON, which, promoted through an
// embedding struct, would decode the port alone and drop binding:host_id.
type binding struct {
	Host string `json:"binding:host_id"`
}

// List returns the server's ports (device_id = the server).
func (p *Ports) List(ctx context.Context, server string) ([]cloud.Port, error) {
	pages, err := ports.List(p.client, ports.ListOpts{DeviceID: server}).AllPages(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("list the ports of server %s (Neutron): %w", server, err))
	}
	var raw []ports.Port
	var bound []binding
	if err := ports.ExtractPortsInto(pages, &raw); err != nil {
		return nil, fmt.Errorf("list the ports of server %s (Neutron): %w", server, err)
	}
	if err := ports.ExtractPortsInto(pages, &bound); err != nil || len(bound) != len(raw) {
		return nil, fmt.Errorf("list the ports of server %s (Neutron): binding hosts: %v", server, err)
	}
	out := make([]cloud.Port, 0, len(raw))
	for i, r := range raw {
		cp := cloud.Port{ID: r.ID, AdminUp: r.AdminStateUp, Host: bound[i].Host}
		for _, ip := range r.FixedIPs {
			cp.IPs = append(cp.IPs, ip.IPAddress)
		}
		out = append(out, cp)
	}
	return out, nil
}

// SetAdmin sets every port of the server admin up or down and returns their IDs.
// Ports already in that state are left alone (a resumed step redoes nothing).
func (p *Ports) SetAdmin(ctx context.Context, server string, up bool) ([]string, error) {
	list, err := p.List(ctx, server)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, pt := range list {
		ids = append(ids, pt.ID)
		if pt.AdminUp == up {
			continue
		}
		if _, err := ports.Update(ctx, p.client, pt.ID, ports.UpdateOpts{AdminStateUp: &up}).Extract(); err != nil {
			return ids, classify(fmt.Errorf("set port %s of server %s admin_state_up=%v (Neutron): %w", pt.ID, server, up, err))
		}
	}
	return ids, nil
}

// classify maps Neutron's answers onto cloud's error classes.
func classify(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &code) && code.Actual >= 500:
		return fmt.Errorf("%w: %w", cloud.ErrUnavailable, err)
	case errors.As(err, &code) && code.Actual == http.StatusConflict:
		return fmt.Errorf("%w: %w", cloud.ErrConflict, err)
	case errors.As(err, &code) && (code.Actual == http.StatusForbidden || code.Actual == http.StatusUnauthorized || code.Actual == http.StatusNotFound):
		return cloud.Terminal(err)
	case errors.As(err, &code):
		return err
	}
	return fmt.Errorf("%w: %w", cloud.ErrUnavailable, err)
}
