package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// hungBMC is the simulated cloud's BMCs but one that never answers: its reads
// wait until their context ends.
type hungBMC struct {
	cloud.Fencer
	mu   sync.Mutex
	hung string
}

func (f *hungBMC) isHung(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return host == f.hung
}

func (f *hungBMC) silence(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hung = host
}

func (f *hungBMC) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	if f.isHung(host) {
		<-ctx.Done()
		return model.PowerUnknown, fmt.Errorf("BMC of %s: %w", host, ctx.Err())
	}
	return f.Fencer.PowerStatus(ctx, host)
}

func (f *hungBMC) Identity(ctx context.Context, host string) (string, error) {
	if f.isHung(host) {
		<-ctx.Done()
		return "", fmt.Errorf("BMC of %s: %w", host, ctx.Err())
	}
	return f.Fencer.(cloud.Identifier).Identity(ctx, host)
}

// recovery runs host-1's death to its first evacuation, host-2's BMC hung or not,
// in a bubble whose clock the BMC reads wait on. It returns the engine's time from
// the death to the fence's intent and to the first evacuation, and the longest
// real time one reconcile took.
func recovery(t *testing.T, hung bool) (fence, evac, slowest time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 3)
		w.cfg.PowerEvery = 5 * time.Second // host-2's BMC is read during host-1's recovery
		if hung {
			w.cfg.Fencer = &hungBMC{Fencer: w.cloud, hung: "host-2"}
		}
		w.start()
		w.tick()
		w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
		w.tick()
		if err := w.cloud.KillHost("host-1"); err != nil {
			t.Fatal(err)
		}
		died := w.now
		for fence == 0 || evac == 0 {
			time.Sleep(time.Second) // the poll interval, on the bubble's clock too
			start := time.Now()
			if err := w.tick(); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
			if w.now.Sub(died) > 3*time.Minute {
				t.Fatalf("host-1 not recovered in 3 minutes\n%s", w.timeline())
			}
			for _, in := range w.eng.OpenIncidents() {
				for _, st := range in.Steps {
					if st.Action == model.ActFence && fence == 0 {
						fence = st.Started.Sub(died)
					}
					if st.Action == model.ActEvacuate && evac == 0 {
						evac = st.Started.Sub(died)
					}
				}
			}
		}
		// The hung BMC's last read runs out its timeout (the bubble's clock) before
		// the bubble ends.
		time.Sleep(engine.DefaultBMCTimeout)
	})
	return fence, evac, slowest
}

// A BMC that never answers (host-2's) delays neither the fence nor the evacuation
// of another host (host-1): the same reconciles take them, and no reconcile waits
// more than BMCWait for it, not its read's timeout.
func TestAHungBMCDelaysNoOtherHostsRecovery(t *testing.T) {
	f0, e0, s0 := recovery(t, false)
	f1, e1, s1 := recovery(t, true)
	t.Logf("host-1's fence after %s, first evacuation after %s; a reconcile took at most %s (host-2's BMC answering)", f0, e0, s0)
	t.Logf("host-1's fence after %s, first evacuation after %s; a reconcile took at most %s (host-2's BMC hung; its reads time out after %s)", f1, e1, s1, engine.DefaultBMCTimeout)
	if f1 != f0 || e1 != e0 {
		t.Fatalf("host-2's hung BMC delayed host-1's recovery: fence %s (was %s), first evacuation %s (was %s)", f1, f0, e1, e0)
	}
	if s1 > engine.DefaultBMCWait {
		t.Fatalf("a reconcile waited %s for the hung BMC, want at most %s", s1, engine.DefaultBMCWait)
	}
}

// A host to fence whose BMC is silent is not fenced through it: its identity read,
// still going on past the reconcile's wait, leaves the machine behind the entry
// unconfirmed, and the incident waits saying so. (Once the reads went parallel, a
// fence was tried on a BMC that could not even be identified, and its outcome
// stayed unknown for as long as the BMC was silent: the fabric integration tests.)
func TestASilentBMCIsNotFencedThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 3)
		bmc := &hungBMC{Fencer: w.cloud}
		w.cfg.Fencer = bmc
		// A grace shorter than the BMC's read timeout (5 s): the incident opens
		// while the silent BMC's identity read still goes on.
		pol := w.cfg.Policies["default"]
		pol.HostDownGrace = 2 * time.Second
		w.cfg.Policies = map[string]model.Policy{"default": pol}
		w.start()
		w.tick()
		w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
		w.tick()
		// Its identity was read while it answered; it falls silent with its host.
		bmc.silence("host-1")
		if err := w.cloud.KillHost("host-1"); err != nil {
			t.Fatal(err)
		}
		var reason string
		for range 90 {
			time.Sleep(time.Second)
			if err := w.tick(); err != nil {
				t.Fatal(err)
			}
			for _, in := range w.eng.OpenIncidents() {
				if in.Subject.ID != "host-1" {
					continue
				}
				reason = in.Reason
				for _, st := range in.Steps {
					if st.Action == model.ActFence && st.State != model.StepSkipped {
						t.Fatalf("a fence went through host-1's silent BMC: %+v\n%s", st, w.timeline())
					}
				}
			}
		}
		if !strings.Contains(reason, "identity of the BMC of host host-1 cannot be read") {
			t.Fatalf("host-1's incident: %q, want it waiting on its BMC's identity\n%s", reason, w.timeline())
		}
		time.Sleep(engine.DefaultBMCTimeout)
	})
}
