package vigil

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Acceptance criterion 5 of issue 15 on the OpenStack peer with Heat and the BMCs:
// a stack of two servers tagged vigil-protect is protected without anyone listing
// their IDs; after their host dies they are the same servers (IDs, names, ports,
// IPs) elsewhere and Heat's resources still name them; a stack update that adds a
// server adds it to the cluster at the next refresh. It acts on fake-compute-3 only.

// heatClient talks to Heat as the admin, independently of Vigil's driver.
type heatClient struct {
	t    *testing.T
	orch *gophercloud.ServiceClient
	net  *gophercloud.ServiceClient
}

func newHeatClient(t *testing.T, cloudName string) *heatClient {
	t.Helper()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(cloudName))
	if err != nil {
		t.Fatalf("clouds.yaml entry %s: %v", cloudName, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provider, err := gopenstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		t.Fatalf("authenticate as %s: %v", cloudName, err)
	}
	h := &heatClient{t: t}
	if h.orch, err = gopenstack.NewOrchestrationV1(provider, eo); err != nil {
		t.Skipf("no Heat in the catalog (%v): start the peer with test/peers/openstack/up.sh --with cinder,heat", err)
	}
	if h.net, err = gopenstack.NewNetworkV2(provider, eo); err != nil {
		t.Fatalf("network endpoint: %v", err)
	}
	return h
}

type heatStackDoc struct {
	ID     string   `json:"id"`
	Name   string   `json:"stack_name"`
	Status string   `json:"stack_status"`
	Reason string   `json:"stack_status_reason"`
	Tags   []string `json:"tags"`
}

func (h *heatClient) stack(name string) (heatStackDoc, error) {
	var doc struct {
		Stack heatStackDoc `json:"stack"`
	}
	_, err := h.orch.Get(context.Background(), h.orch.ServiceURL("stacks", name), &doc, nil)
	return doc.Stack, err
}

// waitStack waits for the stack to reach status, failing on a *_FAILED one.
func (h *heatClient) waitStack(name, status string, within time.Duration) heatStackDoc {
	h.t.Helper()
	var st heatStackDoc
	waitFor(h.t, within, "stack "+name+" "+status, func() (bool, string) {
		var err error
		if st, err = h.stack(name); err != nil {
			return false, err.Error()
		}
		if strings.HasSuffix(st.Status, "_FAILED") {
			h.t.Fatalf("stack %s: %s: %s", name, st.Status, st.Reason)
		}
		return st.Status == status, st.Status
	})
	return st
}

// servers is what `openstack stack resource list` says: resource name -> physical id.
func (h *heatClient) servers(name string) map[string]string {
	h.t.Helper()
	st, err := h.stack(name)
	if err != nil {
		h.t.Fatalf("stack %s: %v", name, err)
	}
	var doc struct {
		Resources []struct {
			Name       string `json:"resource_name"`
			Type       string `json:"resource_type"`
			PhysicalID string `json:"physical_resource_id"`
		} `json:"resources"`
	}
	if _, err := h.orch.Get(context.Background(), h.orch.ServiceURL("stacks", name, st.ID, "resources"), &doc, nil); err != nil {
		h.t.Fatalf("resources of %s: %v", name, err)
	}
	out := map[string]string{}
	for _, r := range doc.Resources {
		if r.Type == "OS::Nova::Server" {
			out[r.Name] = r.PhysicalID
		}
	}
	return out
}

// ports is what Neutron says of a server's ports: "port-id ip,ip", sorted.
func (h *heatClient) ports(server string) []string {
	h.t.Helper()
	var doc struct {
		Ports []struct {
			ID  string `json:"id"`
			IPs []struct {
				IP string `json:"ip_address"`
			} `json:"fixed_ips"`
		} `json:"ports"`
	}
	if _, err := h.net.Get(context.Background(), h.net.ServiceURL("ports")+"?"+url.Values{"device_id": {server}}.Encode(), &doc, nil); err != nil {
		h.t.Fatalf("ports of %s: %v", server, err)
	}
	var out []string
	for _, p := range doc.Ports {
		var ips []string
		for _, ip := range p.IPs {
			ips = append(ips, ip.IP)
		}
		out = append(out, p.ID+" "+strings.Join(ips, ","))
	}
	slices.Sort(out)
	return out
}

// template is the peer's two-server template, with a third server when three.
func heatTemplate(t *testing.T, three bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedPeers(), "openstack", "heat-two-servers.yaml"))
	if err != nil {
		t.Skipf("the peer's template: %v", err)
	}
	s := string(b)
	if three {
		third := `  server_c:
    type: OS::Nova::Server
    properties:
      flavor: {get_param: flavor}
      image: {get_param: image}
      networks: [{network: {get_param: network}}]

`
		s = strings.Replace(s, "outputs:", third+"outputs:", 1)
	}
	return s
}

func TestIntegrationHeatStackProtectedByTag(t *testing.T) {
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"../shared/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1 (and the peer with --with cinder,heat)")
	}
	p := newPeer(t)
	h := newHeatClient(t, p.cloud)
	restoreCompute(t, p, 3) // last cleanup: after Vigil stops and the stack is deleted
	cfg := ipmiPolicyFile(t)
	if svc, err := p.service(host3); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host3, svc, err)
	}
	name := strings.ReplaceAll(prefix(t), "_", "-")
	params := map[string]string{"az_a": "nova:" + host3, "az_b": "nova:" + host3}
	t0 := time.Now()
	if _, err := h.orch.Post(context.Background(), h.orch.ServiceURL("stacks"), map[string]any{
		"stack_name": name, "template": heatTemplate(t, false), "parameters": params,
		"tags": model.TagProtect + ",policy=default"}, nil, nil); err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
	t.Cleanup(func() { h.deleteStack(name) })
	st := h.waitStack(name, "CREATE_COMPLETE", 120*time.Second)
	created := time.Since(t0)
	res := h.servers(name)
	ids := []string{res["server_a"], res["server_b"]}
	before := map[string]model.Server{}
	ports := map[string][]string{}
	for _, id := range ids {
		s := p.mustServer(id)
		if s.Host != host3 || s.Status != model.StatusActive {
			t.Fatalf("stack server %s: %s on %s, want ACTIVE on %s", id, s.Status, s.Host, host3)
		}
		before[id] = s
		ports[id] = h.ports(id)
		if len(ports[id]) == 0 {
			t.Fatalf("stack server %s has no port", id)
		}
	}

	const refresh = 3 * time.Second
	started := time.Now()
	v := startVigil(t, p, runOpts{interval: time.Second, config: &cfg, fencer: mustFencer(t, cfg), refreshEvery: refresh})
	var cl model.ClusterStatus
	waitFor(t, 30*time.Second, "cluster "+name+" found from the stack's tag", func() (bool, string) {
		for _, c := range v.app.Engine.Clusters() {
			if c.Name == name {
				cl = c
				return slices.Equal(c.Members, slices.Sorted(slices.Values(ids))) && c.Health == model.Green, fmt.Sprintf("%+v", c)
			}
		}
		return false, "no such cluster"
	})
	found := time.Since(started)
	if cl.Source == nil || !cl.Source.Discovered || cl.Source.Ref != st.ID || cl.Policy != "default" || cl.Desired != 2 {
		t.Fatalf("cluster %+v source %+v: want discovered from stack %s, policy default, desired 2", cl, cl.Source, st.ID)
	}

	killed := killComputes(t, 3)
	activeAt := allActiveElsewhere(t, p, ids, host3, 150*time.Second)
	for _, id := range ids {
		s := p.mustServer(id)
		if s.Name != before[id].Name {
			t.Errorf("server %s is named %q after the evacuation, was %q", id, s.Name, before[id].Name)
		}
		if got := h.ports(id); !slices.Equal(got, ports[id]) {
			t.Errorf("server %s ports after the evacuation %v, were %v", id, got, ports[id])
		}
		if n := evacuations(t, v.drv, id); n != 1 {
			t.Errorf("server %s: %d evacuate actions, want 1", id, n)
		}
	}
	if after := h.servers(name); after["server_a"] != ids[0] || after["server_b"] != ids[1] {
		t.Fatalf("Heat's resources after the evacuation %v, want server_a=%s server_b=%s", after, ids[0], ids[1])
	}
	in, ok := v.incident("host/" + host3)
	if !ok {
		t.Fatalf("no incident for %s\n%s", host3, v.timeline())
	}
	t.Logf("incident %d %s:\n%s", in.ID, in.State, describeSteps(in.Steps))

	// A stack update adds server_c: it joins the cluster at the next refresh.
	updated := time.Now()
	if _, err := h.orch.Put(context.Background(), h.orch.ServiceURL("stacks", name, st.ID), map[string]any{
		"template": heatTemplate(t, true), "parameters": params, // the same: a changed zone replaces a server
		"tags": model.TagProtect + ",policy=default"}, nil, &gophercloud.RequestOpts{OkCodes: []int{202}}); err != nil {
		t.Fatalf("update stack %s: %v", name, err)
	}
	h.waitStack(name, "UPDATE_COMPLETE", 120*time.Second)
	complete := time.Since(updated)
	res = h.servers(name)
	if res["server_a"] != ids[0] || res["server_b"] != ids[1] || res["server_c"] == "" {
		t.Fatalf("after the update Heat's servers are %v: the update replaced a server or added none", res)
	}
	third := res["server_c"]
	waitFor(t, 2*refresh+10*time.Second, "server_c in the cluster", func() (bool, string) {
		for _, c := range v.app.Engine.Clusters() {
			if c.Name == name {
				return len(c.Members) == 3 && slices.Contains(c.Members, third) && c.Desired == 3, fmt.Sprint(c.Members)
			}
		}
		return false, "no cluster"
	})
	joined := time.Since(updated)
	t.Logf("stack created in %.1f s; cluster %s found %.1f s after Vigil started; %s killed -> both servers ACTIVE elsewhere %.1f s (same IDs, names, ports); "+
		"stack update UPDATE_COMPLETE %.1f s, server_c in the cluster %.1f s after the update began (refresh every %s)",
		created.Seconds(), name, found.Seconds(), host3, activeAt.Sub(killed).Seconds(), complete.Seconds(), joined.Seconds(), refresh)
}

func mustFencer(t *testing.T, cfg Config) cloud.Fencer {
	t.Helper()
	f, err := cfg.Fencer()
	if err != nil || f == nil {
		t.Fatalf("fencer: %v %v", f, err)
	}
	return f
}

// deleteStack deletes the stack and waits until Heat has (its servers with it).
func (h *heatClient) deleteStack(name string) {
	st, err := h.stack(name)
	if err != nil {
		h.t.Logf("stack %s to delete: %v", name, err)
		return
	}
	if _, err := h.orch.Delete(context.Background(), h.orch.ServiceURL("stacks", name, st.ID), nil); err != nil {
		h.t.Logf("delete stack %s: %v", name, err)
		return
	}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		st, err := h.stack(name)
		if err != nil || st.Status == "DELETE_COMPLETE" {
			return
		}
		if st.Status == "DELETE_FAILED" {
			h.t.Errorf("delete stack %s: %s", name, st.Reason)
			return
		}
		pause()
	}
	h.t.Errorf("stack %s not deleted after 120 s", name)
}
