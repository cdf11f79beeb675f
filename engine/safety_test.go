package engine_test

// Scenarios for the safety holes of issue 13, each as an operator would meet it on
// a real cloud. Each of them failed on afdeb01 (the commit the review was made on).

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// safetyWorld is newWorld with the knobs these scenarios need: segments, a cloud
// clock apart from Vigil's, policies, and wrappers around the drivers.
type safetyWorld struct {
	hosts, perHost int
	segments       int           // hosts are spread over this many segments (0: one)
	cloudSkew      time.Duration // the cloud's clock minus Vigil's
	policies       map[string]model.Policy
	limits         model.Limits
	wrap           func(*sim.Cloud) (cloud.Compute, cloud.Fencer)
}

func (o safetyWorld) build(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, now: t0}
	w.cloud = sim.New(sim.DefaultConfig(), func() time.Time { return w.now.Add(o.cloudSkew) })
	for h := 1; h <= o.hosts; h++ {
		name := fmt.Sprintf("host-%d", h)
		w.cloud.AddHost(name, fmt.Sprintf("seg-%d", h%max(o.segments, 1)), o.perHost*3)
		for i := 0; i < o.perHost; i++ {
			id, err := w.cloud.CreateServer(fmt.Sprintf("vm-%d-%d", h, i), name)
			if err != nil {
				t.Fatal(err)
			}
			w.ids = append(w.ids, id)
		}
	}
	w.path = filepath.Join(t.TempDir(), "vigil.db")
	pol := model.DefaultPolicy()
	pol.StepTimeout = 20 * time.Second
	pols := map[string]model.Policy{"default": pol}
	for name, p := range o.policies {
		pols[name] = p
	}
	var compute cloud.Compute = w.cloud
	var fencer cloud.Fencer = w.cloud
	if o.wrap != nil {
		compute, fencer = o.wrap(w.cloud)
	}
	w.cfg = engine.Config{Compute: compute, Fencer: fencer, Now: w.clock, Policies: pols, Limits: o.limits,
		FullEvery: 10 * time.Second, OnEvent: func(e model.Event) { w.events = append(w.events, e) }}
	w.start()
	w.tick()
	return w
}

func (w *world) clusterWith(name, policy string, members ...string) {
	w.t.Helper()
	if err := w.eng.CreateCluster(context.Background(), model.Cluster{Name: name, Members: members, Desired: len(members), Policy: policy}); err != nil {
		w.t.Fatal(err)
	}
}

// run ticks for d (one virtual second each), failing on a tick error.
func (w *world) run(d time.Duration) {
	w.t.Helper()
	end := w.now.Add(d)
	for w.now.Before(end) {
		if err := w.tick(); err != nil {
			w.t.Fatalf("tick: %v\n%s", err, w.timeline())
		}
	}
}

func (w *world) saw(substr string) bool {
	for _, e := range w.events {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

// Hole 1: a fence intent is journaled, Vigil is down for minutes, the host (only
// isolated) reports again. The restarted Vigil must not power it off.
func TestFenceIntentOfAHostThatCameBackIsNotTaken(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	crashed := crashAt(w, "after-intent", model.ActFence)
	if err := w.cloud.IsolateHost("host-1", true); err != nil {
		t.Fatal(err)
	}
	for !*crashed {
		_ = w.tick()
		if w.now.Sub(t0) > 3*time.Minute {
			t.Fatalf("never reached the fence intent\n%s", w.timeline())
		}
	}
	// Vigil is down for five minutes; meanwhile the network comes back.
	w.now = w.now.Add(2 * time.Minute)
	if err := w.cloud.IsolateHost("host-1", false); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(3 * time.Minute)
	w.cfg.Hook = hookNone()
	w.start()
	w.run(2 * time.Minute)
	if n := w.cloud.Calls()["bmc-power-off"]; n != 0 || w.cloud.HostPower("host-1") != model.PowerOn {
		t.Fatalf("host-1 came back while Vigil was down and was powered off after its restart (%d power-offs)\n%s", n, w.timeline())
	}
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from a live host\n%s", n, w.timeline())
	}
	if in := w.lastIncident(); in.State != model.IncidentResolved {
		t.Fatalf("host incident %s: %s, want resolved (the host came back)\n%s", in.State, in.Reason, w.timeline())
	}
}

// Hole 1: an evacuate intent is journaled, Vigil is down, an operator powers the
// fenced host on again (Vigil's forced_down still set, so Nova would accept an
// evacuation). The restarted Vigil must not evacuate from a powered host.
func TestEvacuateIntentAfterTheHostWasPoweredOnIsNotTaken(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	crashed := crashAt(w, "after-intent", model.ActEvacuate)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	for !*crashed {
		_ = w.tick()
		if w.now.Sub(t0) > 3*time.Minute {
			t.Fatalf("never reached the evacuate intent\n%s", w.timeline())
		}
	}
	before := w.cloud.Calls()["evacuate"]
	w.now = w.now.Add(time.Minute)
	if err := w.cloud.PowerOnHost("host-1"); err != nil { // no force-up
		t.Fatal(err)
	}
	w.now = w.now.Add(2 * time.Minute)
	w.cfg.Hook = hookNone()
	w.start()
	w.run(2 * time.Minute)
	if n := w.cloud.Calls()["evacuate"] - before; n != 0 {
		t.Fatalf("%d evacuations after the host was powered on again\n%s", n, w.timeline())
	}
	if in := w.lastIncident(); !in.State.Closed() || in.State == model.IncidentResolved && strings.Contains(in.Reason, "ACTIVE on other hosts") {
		t.Fatalf("host incident %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
}

// Hole 2: an operator forces a healthy, reporting compute down. It is not fenced,
// and the verdict says why.
func TestOperatorForceDownOfAHealthyHostIsNotFenced(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	w.run(5 * time.Second)
	if err := w.cloud.ForceDown(context.Background(), "host-1", true); err != nil {
		t.Fatal(err)
	}
	w.run(3 * time.Minute)
	if n := w.cloud.Calls()["bmc-power-off"]; n != 0 {
		t.Fatalf("a healthy host forced down by an operator was powered off (%d)\n%s", n, w.timeline())
	}
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from a healthy host\n%s", n, w.timeline())
	}
	for _, h := range w.eng.Hosts() {
		if h.Name == "host-1" && (h.Verdict.Failed || !strings.Contains(strings.Join(h.Verdict.Evidence, "; "), "still reports")) {
			t.Fatalf("host-1 verdict %+v, want alive with the evidence that it still reports", h.Verdict)
		}
	}
}

// bmcMap is a Fencer whose entries for some hosts reach another host's BMC (a
// misconfigured fencing section). Each BMC identifies as its real host.
type bmcMap struct {
	*sim.Cloud
	to map[string]string
}

func (b bmcMap) bmc(h string) string {
	if x, ok := b.to[h]; ok {
		return x
	}
	return h
}
func (b bmcMap) PowerOff(ctx context.Context, h string) error { return b.Cloud.PowerOff(ctx, b.bmc(h)) }
func (b bmcMap) PowerStatus(ctx context.Context, h string) (model.Power, error) {
	return b.Cloud.PowerStatus(ctx, b.bmc(h))
}

// bmcMapIdent is a bmcMap whose BMCs give their identity (IPMI's system GUID).
type bmcMapIdent struct{ bmcMap }

func (b bmcMapIdent) Identity(ctx context.Context, h string) (string, error) {
	return "guid-of-" + b.bmc(h), nil
}

// Hole 3: host-1's entry reaches host-3's BMC. When host-1 dies, host-3 (alive)
// must not be powered off, nor host-1's servers evacuated on that "proof".
func TestBMCOfAnotherHostIsNeverUsed(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2, wrap: func(c *sim.Cloud) (cloud.Compute, cloud.Fencer) {
		return c, bmcMapIdent{bmcMap{c, map[string]string{"host-1": "host-3"}}}
	}}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	w.run(5 * time.Second)
	if err := w.cloud.IsolateHost("host-1", true); err != nil { // alive, VMs running
		t.Fatal(err)
	}
	w.run(3 * time.Minute)
	if p := w.cloud.HostPower("host-3"); p != model.PowerOn {
		t.Fatalf("host-3, alive, was powered off through host-1's entry\n%s", w.timeline())
	}
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from host-1, whose copies still run\n%s", n, w.timeline())
	}
	if in := w.lastIncident(); in.State != model.IncidentEscalated || !strings.Contains(in.Reason, "one BMC") {
		t.Fatalf("host-1's incident %s: %q, want escalated naming the shared BMC\n%s", in.State, in.Reason, w.timeline())
	}
}

// Hole 3: host-1's entry reaches the BMC of host-2, which is dead: "power off" for a
// host that reports (and no identity to compare). When host-1 is then isolated,
// that "off" is no proof.
func TestBMCThatSaysOffForAReportingHostIsNoProof(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2, wrap: func(c *sim.Cloud) (cloud.Compute, cloud.Fencer) {
		return c, bmcMap{c, map[string]string{"host-1": "host-2"}}
	}}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	if err := w.cloud.KillHost("host-2"); err != nil {
		t.Fatal(err)
	}
	w.run(time.Minute)
	if err := w.cloud.IsolateHost("host-1", true); err != nil {
		t.Fatal(err)
	}
	w.run(3 * time.Minute)
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from host-1, alive, on a BMC that said off while it reported\n%s", n, w.timeline())
	}
	if !w.saw("says power off while its compute service goes on reporting") {
		t.Fatalf("no event says the BMC contradicts its host\n%s", w.timeline())
	}
	for _, h := range w.eng.Hosts() {
		if h.Name == "host-1" && !strings.Contains(h.FenceDoubt, "says power off") {
			t.Fatalf("host-1 as the API shows it: fence_doubt %q, want the reason its BMC is not trusted", h.FenceDoubt)
		}
	}
}

// Hole 5: the cloud's clock is 2 s behind Vigil's. A crash after an evacuation was
// taken, before its outcome was journaled, must not repeat it.
func TestRestartWithTheCloudClockBehindDoesNotRepeat(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2, cloudSkew: -2 * time.Second}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	crashed := crashAt(w, "after-action", model.ActEvacuate)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	for !*crashed {
		_ = w.tick()
		if w.now.Sub(t0) > 3*time.Minute {
			t.Fatalf("never reached the crash\n%s", w.timeline())
		}
	}
	w.cfg.Hook = hookNone()
	w.start()
	w.until(2*time.Minute, "recovery done", func() bool { return len(w.eng.OpenIncidents()) == 0 })
	if n := w.cloud.Calls()["evacuate"]; n != 2 {
		t.Fatalf("%d evacuate calls for 2 servers: a step was repeated\n%s", n, w.timeline())
	}
}

// Hole 6: a host whose only protected servers have a 5 min host_down_grace is not
// fenced after the default policy's 10 s.
func TestPolicyGraceIsHonoured(t *testing.T) {
	slow := model.DefaultPolicy()
	slow.Name, slow.HostDownGrace, slow.StepTimeout = "slow", 5*time.Minute, 20*time.Second
	w := safetyWorld{hosts: 3, perHost: 2, policies: map[string]model.Policy{"slow": slow}}.build(t)
	w.clusterWith("patient", "slow", w.ids[0], w.ids[1])
	w.run(5 * time.Second)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.run(4 * time.Minute)
	if n := w.cloud.Calls()["bmc-power-off"]; n != 0 {
		t.Fatalf("fenced within 4 min of a 5 min grace\n%s", w.timeline())
	}
	w.until(3*time.Minute, "fence after the policy's grace", func() bool { return w.cloud.Calls()["bmc-power-off"] == 1 })
}

// Hole 7: five segments of two hosts, every heartbeat stops at once (a controller
// fault). No segment brakes on its own (2 < 3 hosts); the cloud-wide brake does.
func TestCloudWideBrake(t *testing.T) {
	w := safetyWorld{hosts: 10, perHost: 1, segments: 5, limits: model.DefaultLimits()}.build(t)
	w.cluster("all", w.ids...)
	w.run(5 * time.Second)
	for h := 1; h <= 10; h++ {
		if err := w.cloud.IsolateHost(fmt.Sprintf("host-%d", h), true); err != nil {
			t.Fatal(err)
		}
	}
	w.run(3 * time.Minute)
	if n := w.cloud.Calls()["bmc-power-off"]; n != 0 {
		t.Fatalf("%d fences while every heartbeat stopped at once\n%s", n, w.timeline())
	}
	if !w.saw("across the whole cloud") {
		t.Fatalf("no incident says the cloud-wide brake holds it\n%s", w.timeline())
	}
}

// Hole 8: a server incident does not escalate on its deadline while the cloud cannot
// be seen. The cloud refuses every reboot with a 503 for a while (so the incident
// sits between retries), then cannot be reached at all past the deadline.
func TestNoEscalationDuringAnOutage(t *testing.T) {
	short := model.DefaultPolicy()
	short.Name, short.Deadline, short.StepTimeout, short.MaxAttempts = "short", 2*time.Minute, 20*time.Second, 1000
	w := safetyWorld{hosts: 3, perHost: 2, policies: map[string]model.Policy{"short": short}}.build(t)
	w.clusterWith("db", "short", w.ids[0])
	w.run(5 * time.Second)
	unavailable := make([]error, 1000)
	for i := range unavailable {
		unavailable[i] = cloud.ErrUnavailable
	}
	w.cloud.FailNext("hard-reboot", unavailable...)
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	w.run(90 * time.Second)
	w.cloud.SetAPIDown(true)
	for end := w.now.Add(5 * time.Minute); w.now.Before(end); {
		_ = w.tick()
		for _, e := range w.events {
			if e.Kind == "incident" && strings.Contains(e.Message, " escalated: ") {
				t.Fatalf("escalated while the cloud could not be seen: %s\n%s", e.Message, w.timeline())
			}
		}
	}
}

// Hole 9: an hour-old ERROR notification does not make Vigil reboot a healthy server.
func TestStaleNotificationIsIgnored(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	w.cluster("web", w.ids[0])
	w.run(15 * time.Second) // a full listing has seen it healthy
	old := model.Server{ID: w.ids[0], Status: model.StatusError, Host: "host-1", Updated: w.now.Add(-time.Hour)}
	if err := w.eng.Observe(context.Background(), model.Observation{At: w.now, Source: "notification", Servers: []model.Server{old}}); err != nil {
		t.Fatal(err)
	}
	w.run(30 * time.Second)
	c := w.cloud.Calls()
	if n := c["reboot"] + c["hard-reboot"] + c["rebuild"]; n != 0 {
		t.Fatalf("%d recovery actions on a healthy server after an hour-old notification\n%s", n, w.timeline())
	}
}

func hookNone() recover.Hook { return recover.Hook{} }

// bmcNoGUID is a fencer whose BMCs answer but give no identity (no GUID).
type bmcNoGUID struct{ *sim.Cloud }

func (b bmcNoGUID) Identity(ctx context.Context, h string) (string, error) {
	return "", cloud.Terminal(fmt.Errorf("identity of %s: %w", h, cloud.ErrNoIdentity))
}

// A BMC without a GUID gives nothing to compare: that is no reason to distrust it.
// A dead host behind one is fenced and its servers evacuated as usual.
func TestBMCWithoutIdentityStillFences(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2, wrap: func(c *sim.Cloud) (cloud.Compute, cloud.Fencer) {
		return c, bmcNoGUID{c}
	}}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	w.run(5 * time.Second)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(2*time.Minute, "both servers evacuated", func() bool {
		return w.status(w.ids[0]).Host != "host-1" && w.status(w.ids[1]).Host != "host-1" && len(w.eng.OpenIncidents()) == 0
	})
	if in := w.lastIncident(); in.State != model.IncidentResolved {
		t.Fatalf("incident %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
}

// Seed 917: a BMC caught lying is still not trusted after Vigil restarts (its host,
// cut off while Vigil was away, would otherwise be "fenced" by the lie and its
// servers evacuated beside their running copies); an operator clears the doubt
// once the BMC is fixed, and a BMC that still lies is doubted again.
func TestFenceDoubtOutlivesARestartUntilAnOperatorClearsIt(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2, wrap: func(c *sim.Cloud) (cloud.Compute, cloud.Fencer) {
		return c, bmcMap{c, map[string]string{"host-1": "host-2"}}
	}}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	if err := w.cloud.KillHost("host-2"); err != nil {
		t.Fatal(err)
	}
	w.until(2*time.Minute, "host-1's BMC doubted", func() bool { return w.saw("goes on reporting") })
	// Vigil restarts; meanwhile host-1 is cut off.
	if err := w.cloud.IsolateHost("host-1", true); err != nil {
		t.Fatal(err)
	}
	w.cfg.Hook = hookNone()
	w.start()
	w.run(3 * time.Minute)
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from host-1 after a restart forgot its BMC lies\n%s", n, w.timeline())
	}
	for _, h := range w.eng.Hosts() {
		if h.Name == "host-1" && h.FenceDoubt == "" {
			t.Fatalf("host-1's fence doubt was lost in the restart")
		}
	}
	// The operator clears the doubt though the BMC still lies: host-1 reports again,
	// and the doubt comes back.
	if err := w.cloud.IsolateHost("host-1", false); err != nil {
		t.Fatal(err)
	}
	w.run(time.Minute)
	if err := w.eng.TrustFence(context.Background(), "host-1"); err != nil {
		t.Fatal(err)
	}
	if !w.saw("trusts the fence device of host host-1 again") {
		t.Fatal("no event says the operator cleared the doubt")
	}
	w.until(2*time.Minute, "host-1 doubted again", func() bool {
		for _, h := range w.eng.Hosts() {
			if h.Name == "host-1" && h.FenceDoubt != "" {
				return true
			}
		}
		return false
	})
	if err := w.eng.TrustFence(context.Background(), "host-3"); err == nil {
		t.Fatal("clearing a doubt that does not exist succeeded")
	}
}

// Seed 1936: host-1's fence entry is rewired to host-3's BMC (host-3 has no entry of
// its own, so no two entries share it) while Vigil is down, and host-1 is cut off.
// The restarted Vigil must compare the BMC's identity with the one read before the
// restart, not take the first one it reads as host-1's: it must not power off
// host-3, alive, nor evacuate host-1's servers, whose copies still run.
func TestBMCRewiredWhileVigilWasDownIsNeverUsed(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	if err := w.cloud.SetFenceEntry("host-3", ""); err != nil {
		t.Fatal(err)
	}
	w.cluster("web", w.ids[0], w.ids[1])
	w.run(time.Minute) // host-1's BMC identity is read
	if err := w.cloud.SetFenceEntry("host-1", "host-3"); err != nil {
		t.Fatal(err)
	}
	if err := w.cloud.IsolateHost("host-1", true); err != nil { // alive, VMs running
		t.Fatal(err)
	}
	w.now = w.now.Add(5 * time.Minute) // Vigil is down meanwhile
	w.start()
	w.run(3 * time.Minute)
	if p := w.cloud.HostPower("host-3"); p != model.PowerOn {
		t.Fatalf("host-3, alive, was powered off through host-1's rewired entry\n%s", w.timeline())
	}
	if n := w.cloud.Calls()["evacuate"]; n != 0 {
		t.Fatalf("%d evacuations from host-1, whose copies still run\n%s", n, w.timeline())
	}
	if in := w.lastIncident(); in.State != model.IncidentEscalated || !strings.Contains(in.Reason, "now identifies as") {
		t.Fatalf("host-1's incident %s: %q, want escalated naming the changed identity\n%s", in.State, in.Reason, w.timeline())
	}
}

// A step left as intent behind one already issued (the second evacuation of a host,
// its predecessor accepted and under way) is settled at once after a restart, not
// only once the one before it finished: an incident cannot close while it is
// unsettled.
func TestIntentBehindAnIssuedStepIsSettledAtOnce(t *testing.T) {
	w := safetyWorld{hosts: 3, perHost: 2}.build(t)
	w.cluster("web", w.ids[0], w.ids[1])
	evacs, crashed := 0, false
	w.cfg.Hook = recover.Hook{AfterIntent: func(st model.Step) error {
		if st.Action == model.ActEvacuate {
			if evacs++; evacs == 2 && !crashed {
				crashed = true
				return recover.ErrCrash
			}
		}
		return nil
	}}
	w.start()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	for !crashed {
		_ = w.tick()
		if w.now.Sub(t0) > 3*time.Minute {
			t.Fatalf("never reached the second evacuation\n%s", w.timeline())
		}
	}
	w.cfg.Hook = hookNone()
	w.start()
	_ = w.tick()
	for _, in := range w.eng.OpenIncidents() {
		if st := in.Unsettled(); st != nil {
			t.Fatalf("after the first reconcile of the restarted Vigil, %s %s is still unsettled (its predecessor: %v)\n%s",
				st.Action, st.Subject().ID, actions(in), w.timeline())
		}
	}
}
