package vigil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/fabric"
	"github.com/vigil-ha/vigil/model"
)

// Acceptance 1 of issue 15: fake-compute-3 isolated (SIGSTOP) with its BMC silent
// (bmc-down): under fence_proof bmc-or-fabric its servers' ports are admin down
// before Nova's evacuation starts, the servers come up elsewhere with the same
// ports and addresses, and their ports go up again.

// serviceClouds writes a copy of the peer's clouds.yaml with a vigil-dev-service
// entry (user nova, project service: roles admin, service) and points the test at
// it; the peer's own file is not touched.
func serviceClouds(t *testing.T) {
	t.Helper()
	src := os.Getenv("OS_CLIENT_CONFIG_FILE")
	if src == "" {
		src = "/var/tmp/vigil-openstack/clouds.yaml"
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("clouds.yaml: %v", err)
	}
	s := string(b) + `  vigil-dev-service:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: nova
      password: vigil-service
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
`
	dst := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(dst, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", dst)
}

func bmcCtl(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(sharedPeers(), "ipmi", "ctl.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipmi/ctl.sh %v: %v\n%s", args, err, out)
	}
}

func TestIntegrationFabricFenceProvesAnIsolatedHostWithASilentBMC(t *testing.T) {
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" || os.Getenv("VIGIL_OPENSTACK_CLOUD") == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD or VIGIL_IPMI_OPENSTACK unset: needs the OpenStack peer with Neutron and the BMCs of its computes (../shared/peers/ipmi/up.sh --openstack)")
	}
	serviceClouds(t)
	p := newPeer(t)
	restoreCompute(t, p, 3)
	t.Cleanup(func() { _ = exec.Command(filepath.Join(sharedPeers(), "ipmi", "ctl.sh"), "bmc-up", "3").Run() })
	cfg := ipmiPolicyFile(t)
	pol := cfg.Policies["default"]
	pol.FenceProof = model.FenceProofBMCOrFabric
	cfg.Policies["default"] = pol
	if svc, err := p.service(host3); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host3, svc, err)
	}
	ctx := context.Background()
	fab, err := fabric.New(ctx, fabric.Config{CloudName: os.Getenv("VIGIL_OPENSTACK_CLOUD"), ServiceCloud: "vigil-dev-service"})
	if err != nil {
		t.Fatal(err)
	}
	if ports, _ := fab.Services(); !ports {
		t.Fatal("the peer's catalog has no network endpoint")
	}
	pre := prefix(t)
	bootOnNetwork(t, p, pre, 2, host3)
	ids := p.waitBooted(pre, 2)
	before := map[string]cloud.FabricState{}
	for _, id := range ids {
		st, err := fab.FabricState(ctx, id)
		if err != nil || len(st.Ports) == 0 || !st.PortsUp() {
			t.Fatalf("server %s's fabric before: %+v (%v), want ports up", id, st, err)
		}
		before[id] = st
	}
	fencer, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	v := startVigil(t, p, runOpts{interval: time.Second, config: &cfg, fencer: fencer, fabric: fab})
	v.protect("pinned", "default", ids...)

	start := time.Now()
	bmcCtl(t, "bmc-down", "3")
	peerScript(t, "ctl.sh", "isolate-compute", "3")
	activeAt := allActiveElsewhere(t, p, ids, host3, 180*time.Second)
	resolved := v.waitEvent(60*time.Second, host3+" incident resolved", isEvent("incident", "host/"+host3, "resolved"))
	in, ok := v.incident("host/" + host3)
	if !ok || in.State != model.IncidentResolved {
		t.Fatalf("incident of %s: %+v\n%s", host3, in, v.timeline())
	}
	t.Logf("steps:\n%s", describeSteps(in.Steps))
	if in.Steps[0].Action != model.ActFence || in.Steps[0].State != model.StepSkipped || !strings.HasPrefix(in.Steps[0].Rule, "fence-proof-fabric") {
		t.Errorf("first step %s %s %q, want the fence skipped on the fabric proof", in.Steps[0].Action, in.Steps[0].State, in.Steps[0].Rule)
	}
	var downAt time.Time
	for _, id := range ids {
		var down, evac, up *model.Step
		for i := range in.Steps {
			st := &in.Steps[i]
			if st.Server != id || st.State != model.StepSucceeded {
				continue
			}
			switch st.Action {
			case model.ActPortsDown:
				down = st
			case model.ActEvacuate:
				evac = st
			case model.ActPortsUp:
				up = st
			}
		}
		if down == nil || evac == nil || up == nil {
			t.Fatalf("server %s: ports-down %v, evacuate %v, ports-up %v: want all three succeeded", id, down != nil, evac != nil, up != nil)
		}
		if down.Finished.After(downAt) {
			downAt = down.Finished
		}
		// Nova's own record of the evacuation starts after the ports were read back down.
		acts, err := v.drv.Actions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a.Action == cloud.ActionEvacuate && a.Start.Before(down.Finished.Add(-time.Second)) { // Nova's start_time has whole seconds
				t.Errorf("server %s: Nova's evacuate started %s, before its ports were read back down %s", id, a.Start.Format(time.StampMilli), down.Finished.Format(time.StampMilli))
			}
		}
		if up.Started.Before(evac.Finished) {
			t.Errorf("server %s: ports up at %s, before it was confirmed ACTIVE elsewhere %s", id, up.Started, evac.Finished)
		}
		after, err := fab.FabricState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(st cloud.FabricState) (out []string) {
			for _, p := range st.Ports {
				out = append(out, p.ID+" "+strings.Join(p.IPs, ","))
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(ids(after), ids(before[id])) || !after.PortsUp() {
			t.Errorf("server %s: ports after %+v, before %+v: want the same ports and addresses, admin up", id, after.Ports, before[id].Ports)
		}
		if s := p.mustServer(id); s.Host == host3 {
			t.Errorf("server %s still on %s", id, host3)
		}
	}
	t.Logf("bmc-down + isolation of %s -> ports of both servers down %.1f s -> both ACTIVE elsewhere %.1f s -> incident resolved (ports up) %.1f s",
		host3, downAt.Sub(start).Seconds(), activeAt.Sub(start).Seconds(), resolved.At.Sub(start).Seconds())
}

// bootOnNetwork boots n servers on host with a port each on the peer's private
// network (p.boot boots them without any port).
func bootOnNetwork(t *testing.T, p *peer, prefix string, n int, host string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/openstack", "--os-cloud", os.Getenv("VIGIL_OPENSTACK_CLOUD"), "network", "show", "private", "-f", "value", "-c", "id").Output()
	if err != nil {
		t.Fatalf("network private: %v", err)
	}
	srv := map[string]any{"name": prefix, "flavorRef": "1", "imageRef": p.image, "availability_zone": "nova:" + host,
		"networks": []map[string]string{{"uuid": strings.TrimSpace(string(out))}}, "min_count": n, "max_count": n}
	if _, err := p.admin.Post(context.Background(), p.admin.ServiceURL("servers"), map[string]any{"server": srv}, nil, nil); err != nil {
		t.Fatalf("boot %d servers %s: %v", n, prefix, err)
	}
	t.Cleanup(func() { p.deleteAll(prefix) })
}
