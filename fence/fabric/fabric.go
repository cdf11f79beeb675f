// Package fabric joins fence/neutron and fence/cinder into one cloud.Fabric for an
// OpenStack cloud named in clouds.yaml: ports through Neutron, attachments through
// Cinder with the service token of a second clouds.yaml entry. A cloud without a
// network or volume endpoint in its catalog has that half missing (Services).
package fabric

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/cinder"
	"github.com/vigil-ha/vigil/fence/neutron"
)

// Config names the clouds.yaml entries.
type Config struct {
	CloudName  string // the admin entry ("" : $OS_CLOUD)
	CloudsFile string // "" : $OS_CLIENT_CONFIG_FILE or gophercloud's search path
	// ServiceCloud is an entry of a user with the service role (e.g. nova in
	// project service): its token goes in X-Service-Token, without which Cinder
	// refuses to cut an attachment Nova still lists. "": none.
	ServiceCloud string
	Timeout      time.Duration
}

// Fabric is a cloud.Fabric over Neutron and Cinder.
type Fabric struct {
	ports   *neutron.Ports  // nil: no network endpoint
	volumes *cinder.Volumes // nil: no volume endpoint
}

var _ cloud.Fabric = (*Fabric)(nil)

func provider(ctx context.Context, cfg Config, name string) (*gophercloud.ProviderClient, gophercloud.EndpointOpts, error) {
	opts := []clouds.ParseOption{clouds.WithCloudName(name)}
	if cfg.CloudsFile != "" {
		opts = append(opts, clouds.WithLocations(cfg.CloudsFile))
	}
	ao, eo, _, err := clouds.Parse(opts...)
	if err != nil {
		return nil, eo, fmt.Errorf("cloud %q in clouds.yaml: %w", name, err)
	}
	ao.AllowReauth = true
	pc, err := gopenstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, eo, fmt.Errorf("cloud %q: auth_url %q: %w", name, ao.IdentityEndpoint, err)
	}
	pc.HTTPClient = http.Client{Timeout: cfg.Timeout}
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := gopenstack.Authenticate(actx, pc, ao); err != nil {
		return nil, eo, fmt.Errorf("authenticate to cloud %q as %q: %w", name, ao.Username, err)
	}
	return pc, eo, nil
}

// New authenticates and finds the network and volume endpoints.
func New(ctx context.Context, cfg Config) (*Fabric, error) {
	if cfg.CloudName == "" {
		cfg.CloudName = os.Getenv("OS_CLOUD")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	pc, eo, err := provider(ctx, cfg, cfg.CloudName)
	if err != nil {
		return nil, fmt.Errorf("fabric fence: %w", err)
	}
	f := &Fabric{}
	if net, err := gopenstack.NewNetworkV2(pc, eo); err == nil {
		f.ports = neutron.New(net)
	}
	if vol, err := gopenstack.NewBlockStorageV3(pc, eo); err == nil {
		var svc *gophercloud.ProviderClient
		if cfg.ServiceCloud != "" {
			if svc, _, err = provider(ctx, cfg, cfg.ServiceCloud); err != nil {
				return nil, fmt.Errorf("fabric fence: the service user's entry (cloud.service_cloud): %w", err)
			}
		}
		hint := "cloud.service_cloud in the policy file (or --service-cloud): a clouds.yaml entry of a user with the service role"
		f.volumes = cinder.New(vol, svc, hint)
	}
	return f, nil
}

// Services says which halves the cloud has.
func (f *Fabric) Services() (ports, volumes bool) { return f.ports != nil, f.volumes != nil }

func (f *Fabric) PortsDown(ctx context.Context, server, host string) ([]string, error) {
	if f.ports == nil {
		return nil, fmt.Errorf("ports-down %s: %w: the cloud's catalog has no network endpoint", server, cloud.ErrNoFabric)
	}
	return f.ports.SetAdmin(ctx, server, false)
}

func (f *Fabric) PortsUp(ctx context.Context, server string) ([]string, error) {
	if f.ports == nil {
		return nil, fmt.Errorf("ports-up %s: %w: the cloud's catalog has no network endpoint", server, cloud.ErrNoFabric)
	}
	return f.ports.SetAdmin(ctx, server, true)
}

func (f *Fabric) CutVolumes(ctx context.Context, server, host string) ([]string, error) {
	if f.volumes == nil {
		return nil, nil // no Cinder: no volume to write to
	}
	return f.volumes.Cut(ctx, server, host)
}

func (f *Fabric) FabricState(ctx context.Context, server string) (cloud.FabricState, error) {
	st := cloud.FabricState{HasPorts: f.ports != nil, HasVolumes: f.volumes != nil}
	var err error
	if f.ports != nil {
		if st.Ports, err = f.ports.List(ctx, server); err != nil {
			return st, err
		}
	}
	if f.volumes != nil {
		if st.Attachments, err = f.volumes.Attachments(ctx, server); err != nil {
			return st, err
		}
	}
	return st, nil
}
