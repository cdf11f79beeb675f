package openstack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

const victim = "fake-compute-1"

func hostOf(t *testing.T, d *Driver, name string) model.Host {
	t.Helper()
	hosts, err := d.ListHosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("host %s not listed in %+v", name, hosts)
	return model.Host{}
}

// TestIntegrationHostFailureEvacuate is the host-failure path the engine drives:
// evacuate is refused while the source compute is up; after the compute dies and
// its service is forced down, evacuate moves every server to another host, once.
// It kills and restarts fake-compute-1, so it must not run beside other tests
// that use that host (no test here is parallel).
func TestIntegrationHostFailureEvacuate(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	ctx := context.Background()
	ids := bootServers(t, d, uniquePrefix(t), 2, "nova:"+victim)
	for _, id := range ids {
		if h := getServer(t, d, id).Host; h != victim {
			t.Fatalf("server %s booted on %s, want %s", id, h, victim)
		}
	}

	err := d.Evacuate(ctx, ids[0], "")
	if !errors.Is(err, cloud.ErrConflict) || cloud.IsTerminal(err) || !strings.Contains(err.Error(), "source compute service is up") {
		t.Fatalf("evacuate while %s is up: %v, want a retryable ErrConflict saying the source service is up", victim, err)
	}
	t.Logf("refused: %v", err)

	t.Cleanup(func() { peerScript(t, "up.sh") }) // repairs whatever this test leaves behind
	peerScript(t, "ctl.sh", "kill-compute", "1")
	fault := time.Now()
	if err := d.ForceDown(ctx, victim, true); err != nil {
		t.Fatalf("force down %s: %v", victim, err)
	}
	if h := hostOf(t, d, victim); !h.ForcedDown || h.Service != model.ServiceDown {
		t.Fatalf("after force-down: %+v", h)
	}
	for _, id := range ids {
		if err := d.Evacuate(ctx, id, ""); err != nil {
			t.Fatalf("evacuate %s: %v", id, err)
		}
	}
	for _, id := range ids {
		// Evacuate is asynchronous: until the conductor has placed it, the server
		// may still read ACTIVE on the dead host. Wait for it to be ACTIVE elsewhere.
		waitFor(t, 90*time.Second, "server "+id+" ACTIVE on another host", func() (bool, string) {
			s := getServer(t, d, id)
			return s.Status == model.StatusActive && s.TaskState == "" && s.Host != victim && s.Host != "",
				s.Status + "/" + s.TaskState + " on " + s.Host
		})
	}
	t.Logf("fault to all %d ACTIVE elsewhere: %v (force-down and evacuate issued at once)", len(ids), time.Since(fault).Round(time.Millisecond))
	for _, id := range ids {
		acts, err := d.Actions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range acts {
			if a.Action == cloud.ActionEvacuate {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("server %s: %d evacuate actions, want exactly 1: %+v", id, n, acts)
		}
	}

	// bring the host back: Nova refuses force-up until the restarted compute has
	// cleaned up the evacuated servers; that refusal is a retryable conflict
	peerScript(t, "ctl.sh", "start-compute", "1")
	back := time.Now()
	refusals := 0
	waitFor(t, 60*time.Second, "force-up "+victim, func() (bool, string) {
		err := d.ForceDown(ctx, victim, false)
		if err == nil {
			return true, ""
		}
		if !errors.Is(err, cloud.ErrConflict) || cloud.IsTerminal(err) {
			t.Fatalf("force-up %s: %v, want nil or a retryable conflict", victim, err)
		}
		if refusals == 0 {
			t.Logf("force-up refused for now: %v", err)
		}
		refusals++
		return false, err.Error()
	})
	t.Logf("force-up accepted %v after start-compute (%d refusals)", time.Since(back).Round(time.Millisecond), refusals)
	waitFor(t, 60*time.Second, victim+" up", func() (bool, string) {
		h := hostOf(t, d, victim)
		return !h.ForcedDown && h.Service == model.ServiceUp, string(h.Service)
	})
}
