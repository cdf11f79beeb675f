package vigil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/fabric"
	"github.com/vigil-ha/vigil/model"
)

// The fabric fence on the peer beyond acceptance 1 (fabric_integration_test.go):
// the default proof (bmc) never lets the fabric stand in for a silent BMC; with
// Cinder, the old attachment is cut before Nova's evacuation starts, given the
// service user's token, and without it the cut fails for that stated reason and
// nothing is evacuated.

// fabricRig is one host-3 case: servers on the private network, optionally each
// with a volume, Vigil running with the given fence proof and fabric.
type fabricRig struct {
	t      *testing.T
	p      *peer
	v      *vigilRun
	fab    *fabric.Fabric
	vol    *gophercloud.ServiceClient
	ids    []string
	vols   map[string]string // server -> its volume
	before map[string]cloud.FabricState
	start  time.Time // the BMC taken down and the host isolated
}

// rigOpts: the fence proof, the service user's clouds.yaml entry ("": none), how
// many servers (each with a volume when withVolumes), whether host 3's BMC answers,
// and changes to the default policy.
type rigOpts struct {
	proof        string
	serviceCloud string
	servers      int
	withVolumes  bool
	bmcAnswers   bool
	tune         func(*model.Policy)
}

func newFabricRig(t *testing.T, o rigOpts) *fabricRig {
	proof, serviceCloud, servers, withVolumes := o.proof, o.serviceCloud, o.servers, o.withVolumes
	t.Helper()
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" || os.Getenv("VIGIL_OPENSTACK_CLOUD") == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD or VIGIL_IPMI_OPENSTACK unset: needs the OpenStack peer with Neutron (and Cinder) and the BMCs of its computes (../shared/peers/ipmi/up.sh --openstack)")
	}
	serviceClouds(t) // a copy with vigil-dev-service, for this test only
	r := &fabricRig{t: t, p: newPeer(t), vols: map[string]string{}, before: map[string]cloud.FabricState{}}
	restoreCompute(t, r.p, 3)
	t.Cleanup(func() { _ = exec.Command(filepath.Join(sharedPeers(), "ipmi", "ctl.sh"), "bmc-up", "3").Run() })
	cfg := ipmiPolicyFile(t)
	pol := cfg.Policies["default"]
	pol.FenceProof = proof
	if o.tune != nil {
		o.tune(&pol)
	}
	cfg.Policies["default"] = pol
	if svc, err := r.p.service(host3); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host3, svc, err)
	}
	ctx := context.Background()
	fab, err := fabric.New(ctx, fabric.Config{CloudName: os.Getenv("VIGIL_OPENSTACK_CLOUD"), CloudsFile: os.Getenv("OS_CLIENT_CONFIG_FILE"), ServiceCloud: serviceCloud})
	if err != nil {
		t.Fatal(err)
	}
	r.fab = fab
	ports, hasVols := fab.Services()
	if !ports || withVolumes && !hasVols {
		t.Fatalf("the peer's catalog: network %v, volume %v: run test/peers/openstack/up.sh --with cinder,heat", ports, hasVols)
	}
	pre := prefix(t)
	if withVolumes {
		if r.vol, err = gopenstack.NewBlockStorageV3(r.p.admin.ProviderClient, gophercloud.EndpointOpts{}); err != nil {
			t.Fatalf("volume endpoint: %v", err)
		}
	}
	var vols []string
	if withVolumes {
		for i := range servers {
			vols = append(vols, r.newVolume(fmt.Sprintf("%s-v%d", pre, i)))
		}
	}
	bootOnNetwork(t, r.p, pre, servers, host3) // its clean-up deletes the servers before the volumes
	r.ids = r.p.waitBooted(pre, servers)
	for i, v := range vols {
		r.attach(v, r.ids[i])
	}
	for _, id := range r.ids {
		st, err := fab.FabricState(ctx, id)
		if err != nil || len(st.Ports) == 0 || !st.PortsUp() || withVolumes && len(st.AttachedTo(host3)) != 1 {
			t.Fatalf("server %s's fabric before: %+v (%v), want ports up (and one attachment to %s)", id, st, err, host3)
		}
		r.before[id] = st
	}
	fencer, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	r.v = startVigil(t, r.p, runOpts{interval: time.Second, config: &cfg, fencer: fencer, fabric: fab})
	t.Cleanup(func() { // before Vigil stops (clean-ups run last first)
		if t.Failed() {
			t.Logf("Vigil's timeline:\n%s", r.v.timeline())
		}
	})
	r.v.protect("pinned", "default", r.ids...)
	r.start = time.Now()
	if !o.bmcAnswers {
		bmcCtl(t, "bmc-down", "3")
	}
	peerScript(t, "ctl.sh", "isolate-compute", "3")
	return r
}

// newVolume creates a 1 GB volume, deleted at clean-up (register it before the
// servers it is attached to: clean-ups run last first).
func (r *fabricRig) newVolume(name string) string {
	t := r.t
	ctx := context.Background()
	v, err := volumes.Create(ctx, r.vol, volumes.CreateOpts{Size: 1, Name: name}, nil).Extract()
	if err != nil {
		t.Fatalf("create volume %s: %v", name, err)
	}
	t.Cleanup(func() {
		waitFor(t, 90*time.Second, "volume "+v.ID+" free to delete", func() (bool, string) {
			got, err := volumes.Get(ctx, r.vol, v.ID).Extract()
			if err != nil {
				return false, err.Error()
			}
			return got.Status == "available" || got.Status == "error", got.Status
		})
		if err := volumes.Delete(ctx, r.vol, v.ID, nil).ExtractErr(); err != nil {
			t.Errorf("delete volume %s: %v", v.ID, err)
		}
	})
	r.waitVolume(v.ID, 60*time.Second, "available", "")
	return v.ID
}

// attach attaches the volume to server through Nova and waits until it is in-use.
func (r *fabricRig) attach(vol, server string) {
	body := map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}
	if _, err := r.p.admin.Post(context.Background(), r.p.admin.ServiceURL("servers", server, "os-volume_attachments"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		r.t.Fatalf("attach volume %s to %s: %v", vol, server, err)
	}
	r.waitVolume(vol, 60*time.Second, "in-use", server)
	r.vols[server] = vol
}

// waitVolume waits until the volume has status (and, with server set, exactly one
// attachment, to that server) and returns the attachment's connector host.
func (r *fabricRig) waitVolume(id string, within time.Duration, status, server string) string {
	r.t.Helper()
	host := ""
	waitFor(r.t, within, fmt.Sprintf("volume %s %s", id, status), func() (bool, string) {
		v, err := volumes.Get(context.Background(), r.vol, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if v.Status != status {
			return false, v.Status
		}
		if server == "" {
			return true, ""
		}
		if len(v.Attachments) != 1 || v.Attachments[0].ServerID != server {
			return false, fmt.Sprintf("%s, attachments %+v", v.Status, v.Attachments)
		}
		host = v.Attachments[0].HostName
		return true, ""
	})
	return host
}

// step returns the last step act of server id in the incident (nil: none).
func lastStep(in model.Incident, act model.Action, id string) *model.Step {
	for i := len(in.Steps) - 1; i >= 0; i-- {
		if in.Steps[i].Action == act && in.Steps[i].Server == id {
			return &in.Steps[i]
		}
	}
	return nil
}

// noEvacuation: Nova's own record of each server shows no evacuation, and each
// still sits on host 3.
func (r *fabricRig) noEvacuation() {
	r.t.Helper()
	for _, id := range r.ids {
		acts, err := r.v.drv.Actions(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, a := range acts {
			if a.Action == cloud.ActionEvacuate {
				r.t.Errorf("server %s: Nova's instance actions show an evacuation at %s", id, a.Start)
			}
		}
		if s := r.p.mustServer(id); s.Host != host3 {
			r.t.Errorf("server %s moved to %s", id, s.Host)
		}
	}
}

// The default policy (fence_proof bmc) never takes the fabric as the proof: an
// isolated host whose BMC does not answer is escalated with a reason naming
// fence_proof; no port is set down and nothing is evacuated.
func TestIntegrationFabricDefaultProofEscalatesWithoutTheBMC(t *testing.T) {
	// The default policy but for its deadline, 90 s (10 min by default): the
	// incident waits for the silent BMC (its identity cannot be read, so no fence is
	// even tried), saying which fence_proof would accept the fabric, and escalates
	// at the deadline.
	r := newFabricRig(t, rigOpts{proof: model.FenceProofBMC, serviceCloud: "vigil-dev-service", servers: 1, tune: func(p *model.Policy) { p.Deadline = 90 * time.Second }})
	if !r.v.app.Engine.Policies()["default"].FabricFence {
		t.Fatal("the default policy has fabric_fence off")
	}
	esc := r.v.waitEvent(180*time.Second, host3+" incident escalated", isEvent("incident", "host/"+host3, "escalated"))
	in, ok := r.v.incident("host/" + host3)
	if !ok || in.State != model.IncidentEscalated || !strings.Contains(in.Reason, "fence_proof") {
		t.Fatalf("incident of %s: %s %q, want escalated naming fence_proof\n%s", host3, in.State, in.Reason, r.v.timeline())
	}
	t.Logf("steps:\n%s", describeSteps(in.Steps))
	if w, ok := r.v.find(isEvent("incident", "host/"+host3, "waiting")); !ok || !strings.Contains(w.Message, "fence_proof bmc-or-fabric would accept") {
		t.Errorf("while it waited: %q; want the reason to say which fence_proof would accept the fabric", w.Message)
	}
	for _, st := range in.Steps {
		if st.Action == model.ActPortsDown || st.Action == model.ActDetachVols || st.Action == model.ActEvacuate {
			t.Errorf("step %s of %s (%s) under fence_proof bmc with a silent BMC", st.Action, st.Server, st.State)
		}
	}
	for _, id := range r.ids {
		st, err := r.fab.FabricState(context.Background(), id)
		if err != nil || !st.PortsUp() {
			t.Errorf("server %s's ports after: %+v (%v), want all admin up", id, st.Ports, err)
		}
	}
	r.noEvacuation()
	t.Logf("bmc-down + isolation of %s -> escalated %.1f s: %s", host3, esc.At.Sub(r.start).Seconds(), in.Reason)
}

// With Cinder and the service user's token (cloud.service_cloud), under
// bmc-or-fabric with a silent BMC: each server's attachment to host 3 is cut
// (read back gone) before Nova's evacuation starts, and afterwards its volume is
// in-use, attached to it on its new host.
func TestIntegrationFabricCutsVolumeAttachmentsBeforeTheEvacuation(t *testing.T) {
	r := newFabricRig(t, rigOpts{proof: model.FenceProofBMCOrFabric, serviceCloud: "vigil-dev-service", servers: 2, withVolumes: true})
	activeAt := allActiveElsewhere(t, r.p, r.ids, host3, 180*time.Second)
	r.v.waitEvent(60*time.Second, host3+" incident resolved", isEvent("incident", "host/"+host3, "resolved"))
	in, _ := r.v.incident("host/" + host3)
	t.Logf("steps:\n%s", describeSteps(in.Steps))
	ctx := context.Background()
	var markDown, cutDone, evacStep, novaStart time.Time
	for _, st := range in.Steps {
		if st.Action == model.ActMarkDown && st.State == model.StepSucceeded {
			markDown = st.Finished
		}
	}
	for _, id := range r.ids {
		cut, down, evac := lastStep(in, model.ActDetachVols, id), lastStep(in, model.ActPortsDown, id), lastStep(in, model.ActEvacuate, id)
		if cut == nil || cut.State != model.StepSucceeded || down == nil || down.State != model.StepSucceeded || evac == nil || evac.State != model.StepSucceeded {
			t.Fatalf("server %s: volumes-cut %+v, ports-down %+v, evacuate %+v: want all three succeeded\n%s", id, cut, down, evac, r.v.timeline())
		}
		cutDone = later(cutDone, cut.Finished, down.Finished)
		if evacStep.IsZero() || evac.Started.Before(evacStep) {
			evacStep = evac.Started
		}
		acts, err := r.v.drv.Actions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range acts {
			if a.Action != cloud.ActionEvacuate {
				continue
			}
			n++
			if novaStart.IsZero() || a.Start.Before(novaStart) {
				novaStart = a.Start
			}
			// Nova's start_time has whole seconds.
			if a.Start.Before(cut.Finished.Add(-time.Second)) {
				t.Errorf("server %s: Nova's evacuate started %s, before its attachment to %s was read back gone %s", id, a.Start.Format(time.StampMilli), host3, cut.Finished.Format(time.StampMilli))
			}
		}
		if n != 1 {
			t.Errorf("server %s: %d evacuations in Nova's instance actions, want 1", id, n)
		}
		newHost := r.p.mustServer(id).Host
		if got := r.waitVolume(r.vols[id], 90*time.Second, "in-use", id); got != newHost || got == host3 {
			t.Errorf("volume %s of %s attached on %q, want its new host %s", r.vols[id], id, got, newHost)
		}
	}
	t.Logf("bmc-down + isolation of %s -> marked down %.1f s -> ports down and attachments cut (all %d servers, read back) %.1f s -> first evacuate step %.1f s (Nova's start %.0f s) -> all ACTIVE elsewhere %.1f s; mark-down to evacuate %.1f s, cut confirmed to evacuate %.1f s",
		host3, markDown.Sub(r.start).Seconds(), len(r.ids), cutDone.Sub(r.start).Seconds(), evacStep.Sub(r.start).Seconds(), novaStart.Sub(r.start).Seconds(),
		activeAt.Sub(r.start).Seconds(), evacStep.Sub(markDown).Seconds(), evacStep.Sub(cutDone).Seconds())
}

func later(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// Without the service user (no cloud.service_cloud), Cinder refuses to cut the
// attachment Nova still lists: the step fails saying a service token is needed,
// and under bmc-or-fabric (the fabric is the proof) nothing is evacuated.
func TestIntegrationFabricWithoutServiceTokenDoesNotEvacuate(t *testing.T) {
	r := newFabricRig(t, rigOpts{proof: model.FenceProofBMCOrFabric, servers: 1, withVolumes: true})
	esc := r.v.waitEvent(180*time.Second, host3+" incident escalated", isEvent("incident", "host/"+host3, "escalated"))
	in, _ := r.v.incident("host/" + host3)
	t.Logf("steps:\n%s", describeSteps(in.Steps))
	id := r.ids[0]
	cut := lastStep(in, model.ActDetachVols, id)
	if cut == nil || cut.State != model.StepFailed || !strings.Contains(cut.Error, "service token") || !strings.Contains(cut.Error, "cloud.service_cloud") {
		t.Fatalf("volumes-cut of %s: %+v; want failed, saying a service token is needed and how to configure one", id, cut)
	}
	if in.State != model.IncidentEscalated || !strings.Contains(in.Reason, "service token") {
		t.Errorf("incident %s: %q; want escalated with Cinder's reason", in.State, in.Reason)
	}
	if lastStep(in, model.ActEvacuate, id) != nil {
		t.Errorf("an evacuate step of %s after the refused cut", id)
	}
	r.noEvacuation()
	st, err := r.fab.FabricState(context.Background(), id)
	if err != nil || len(st.AttachedTo(host3)) != 1 {
		t.Errorf("server %s's attachments after: %+v (%v), want its attachment to %s untouched", id, st.Attachments, err, host3)
	}
	t.Logf("bmc-down + isolation of %s -> escalated %.1f s: %s", host3, esc.At.Sub(r.start).Seconds(), in.Reason)
}

// The everyday case, default policy: the BMC answers and proves the host off;
// the fabric fence is extra safety, taken for every server in the one round after
// the mark-down; the evacuations follow in the next. Measures fence to evacuate.
func TestIntegrationFabricExtraSafetyAfterTheBMCFence(t *testing.T) {
	r := newFabricRig(t, rigOpts{proof: model.FenceProofBMC, serviceCloud: "vigil-dev-service", servers: 2, withVolumes: true, bmcAnswers: true})
	activeAt := allActiveElsewhere(t, r.p, r.ids, host3, 180*time.Second)
	r.v.waitEvent(60*time.Second, host3+" incident resolved", isEvent("incident", "host/"+host3, "resolved"))
	in, _ := r.v.incident("host/" + host3)
	t.Logf("steps:\n%s", describeSteps(in.Steps))
	var fenced, markDown, cutStart, cutDone, evac time.Time
	for _, st := range in.Steps {
		switch {
		case st.State != model.StepSucceeded:
			t.Errorf("step %s of %s %s: %s", st.Action, st.Server, st.State, st.Error)
		case st.Action == model.ActFence:
			fenced = st.Finished
		case st.Action == model.ActMarkDown:
			markDown = st.Finished
		case st.Action == model.ActPortsDown || st.Action == model.ActDetachVols:
			if cutStart.IsZero() || st.Started.Before(cutStart) {
				cutStart = st.Started
			}
			cutDone = later(cutDone, st.Finished)
		case st.Action == model.ActEvacuate:
			if evac.IsZero() || st.Started.Before(evac) {
				evac = st.Started
			}
			if st.Started.Before(cutDone) {
				t.Errorf("evacuation of %s started %s, before the cuts were confirmed %s", st.Server, st.Started, cutDone)
			}
		}
	}
	if fenced.IsZero() || markDown.IsZero() || cutDone.IsZero() || evac.IsZero() {
		t.Fatalf("fence %v, mark-down %v, cuts %v, evacuation %v: want all", fenced, markDown, cutDone, evac)
	}
	for _, id := range r.ids {
		newHost := r.p.mustServer(id).Host
		if got := r.waitVolume(r.vols[id], 90*time.Second, "in-use", id); got != newHost {
			t.Errorf("volume %s of %s attached on %q, want its new host %s", r.vols[id], id, got, newHost)
		}
	}
	t.Logf("isolation of %s -> fence confirmed (BMC off) %.1f s -> marked down %.1f s -> cuts %.1f..%.1f s -> first evacuate step %.1f s -> all ACTIVE elsewhere %.1f s; fence to evacuate %.1f s, mark-down to evacuate %.1f s, cuts confirmed to evacuate %.1f s",
		host3, fenced.Sub(r.start).Seconds(), markDown.Sub(r.start).Seconds(), cutStart.Sub(r.start).Seconds(), cutDone.Sub(r.start).Seconds(), evac.Sub(r.start).Seconds(),
		activeAt.Sub(r.start).Seconds(), evac.Sub(fenced).Seconds(), evac.Sub(markDown).Seconds(), evac.Sub(cutDone).Seconds())
}
