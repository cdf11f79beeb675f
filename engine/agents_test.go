package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// An agent is told to probe exactly the protected servers the cloud places on its
// host, with their cluster's policy's probes: not another host's, not unprotected
// ones, not those of a policy without probes.
func TestOrdersProbeTheProtectedServersOfTheHost(t *testing.T) {
	w := newWorld(t, 2, 2)
	probed := model.DefaultPolicy()
	probed.Name = "probed"
	probed.GuestAgent = &model.ProbeSpec{Name: "guest-agent", Kind: model.ProbeGuestAgent, Interval: 2 * time.Second, Timeout: time.Second, Failures: 3}
	w.cfg.Policies["probed"] = probed
	w.start()
	w.tick()
	ctx := context.Background()
	// host-1 holds ids[0], ids[1]; host-2 ids[2], ids[3].
	if err := w.eng.CreateCluster(ctx, model.Cluster{Name: "p", Members: []string{w.ids[0], w.ids[2]}, Desired: 2, Policy: "probed"}); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.CreateCluster(ctx, model.Cluster{Name: "d", Members: []string{w.ids[1]}, Desired: 1, Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	w.tick()
	o := w.eng.Orders("host-1", time.Second)
	if o.Interval != time.Second || len(o.Probes) != 1 || o.Probes[w.ids[0]].GuestAgent == nil || o.Probes[w.ids[0]].GuestAgent.Failures != 3 {
		t.Fatalf("orders of host-1: %+v, want the guest agent probe of %s only", o, w.ids[0])
	}
	if o := w.eng.Orders("host-2", time.Second); len(o.Probes) != 1 || o.Probes[w.ids[2]].GuestAgent == nil {
		t.Fatalf("orders of host-2: %+v, want %s only", o, w.ids[2])
	}
	if o := w.eng.Orders("host-9", time.Second); len(o.Probes) != 0 {
		t.Fatalf("orders of an unknown host: %+v", o)
	}
}
