package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/plan"
)

// fabricWorld is newWorld with the sim cloud as the fabric too (ports, volumes).
func fabricWorld(t *testing.T) *world {
	w := newWorld(t, 4, 3)
	w.cfg.Fabric = w.cloud
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
	w.tick()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(3*time.Minute, "host-1's incident resolved", func() bool {
		incs, err := w.db.Incidents(t.Context(), 1)
		return err == nil && len(incs) == 1 && incs[0].Subject.Kind == model.KindHost && incs[0].State.Closed()
	})
	return w
}

// The fabric fence adds one reconcile round to a host's recovery, not two: the
// ports-down and volumes-cut of every evacuee run in the round after the mark-down,
// each confirmed by read-back, and the evacuations start in the very next round.
func TestFabricCutAddsOneRoundBeforeTheEvacuation(t *testing.T) {
	w := fabricWorld(t)
	in := w.lastIncident()
	if in.State != model.IncidentResolved {
		t.Fatalf("incident %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
	var markDown, cutStart, cutEnd, evac time.Time
	cuts := 0
	for _, st := range in.Steps {
		switch st.Action {
		case model.ActMarkDown:
			markDown = st.Finished
		case model.ActPortsDown, model.ActDetachVols:
			if st.State != model.StepSucceeded {
				t.Fatalf("%s of %s %s: %s", st.Action, st.Server, st.State, st.Error)
			}
			cuts++
			if cutStart.IsZero() || st.Started.Before(cutStart) {
				cutStart = st.Started
			}
			if st.Finished.After(cutEnd) {
				cutEnd = st.Finished
			}
		case model.ActEvacuate:
			if evac.IsZero() || st.Started.Before(evac) {
				evac = st.Started
			}
		}
	}
	if cuts != 6 || markDown.IsZero() || evac.IsZero() {
		t.Fatalf("%d cuts (want 6: 3 servers, ports and volumes), mark-down %v, first evacuation %v: %v\n%s", cuts, markDown, evac, actions(in), w.timeline())
	}
	// One tick is one virtual second in this world: every cut in the round after the
	// mark-down, every evacuation in the round after the cuts.
	if !cutStart.Equal(cutEnd) || cutStart.Sub(markDown) > time.Second {
		t.Fatalf("cuts from %s to %s, mark-down confirmed %s: want all cuts in the one round after it\n%s", cutStart, cutEnd, markDown, w.timeline())
	}
	if d := evac.Sub(cutEnd); d <= 0 || d > time.Second {
		t.Fatalf("first evacuation %s after the cuts (confirmed %s): want the very next round\n%s", d, cutEnd, w.timeline())
	}
	for _, st := range in.Steps {
		if st.Action == model.ActEvacuate && st.Started.Sub(evac) > 0 {
			t.Fatalf("evacuation of %s started at %s, a round after the first (%s): all evacuees go together", st.Server, st.Started, evac)
		}
	}
	t.Logf("mark-down confirmed %s, cuts %s, evacuations %s", markDown.Format("15:04:05"), cutEnd.Format("15:04:05"), evac.Format("15:04:05"))
}

// With the default proof (the BMC), Cinder refusing to cut the attachments (no
// service token) is journaled with its reason and holds nothing back: all servers
// are evacuated in the round after the cut, and the resolution says the fabric
// fence is incomplete.
func TestRefusedVolumesCutDoesNotHoldBackABMCProvenRecovery(t *testing.T) {
	w := newWorld(t, 4, 3)
	w.cfg.Fabric = w.cloud
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
	w.tick()
	refused := cloud.Terminal(errors.New("Cinder refuses to delete attachment att-1 of volume vol-1 (server x, host host-1) without a service token: configure cloud.service_cloud"))
	w.cloud.FailNext("volumes-cut", refused, refused, refused)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(3*time.Minute, "all protected servers ACTIVE elsewhere", func() bool {
		for _, id := range w.ids[:3] {
			if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
				return false
			}
		}
		return true
	})
	w.until(time.Minute, "incident closed", func() bool { return w.lastIncident().State.Closed() })
	in := w.lastIncident()
	if in.State != model.IncidentResolved || !strings.Contains(in.Reason, "incomplete") || !strings.Contains(in.Reason, "service token") {
		t.Fatalf("incident %s: %q; want resolved, naming the refused cut\n%s", in.State, in.Reason, w.timeline())
	}
	failed := 0
	for _, st := range in.Steps {
		if st.Action == model.ActDetachVols && st.State == model.StepFailed && strings.Contains(st.Error, "service token") {
			failed++
		}
		if st.Action == model.ActEvacuate && !strings.Contains(st.Rule, "service token") {
			t.Fatalf("evacuation of %s: rule %q does not say its volumes were not cut", st.Server, st.Rule)
		}
	}
	if failed != 3 {
		t.Fatalf("%d volumes-cut journaled failed with the reason, want 3: %v", failed, actions(in))
	}
}

// countingFencer counts the power reads per host.
type countingFencer struct {
	cloud.Fencer
	mu    sync.Mutex // the engine reads BMCs in parallel
	reads map[string]int
}

func (c *countingFencer) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	c.mu.Lock()
	c.reads[host]++
	c.mu.Unlock()
	return c.Fencer.PowerStatus(ctx, host)
}

func (c *countingFencer) count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[host]
}

// Once a host's incident took the fabric fence as its proof (its BMC silent), its
// BMC is no longer read at every reconcile: each read of a silent BMC waits out
// its timeout (5 s with IPMI on the peer), which was added to every round of the
// recovery. It is read with every other host's, every PowerEvery.
func TestSilentBMCIsNotReadEveryRoundOnceTheFabricIsTheProof(t *testing.T) {
	w := newWorld(t, 4, 3)
	pol := w.cfg.Policies["default"]
	pol.FenceProof = model.FenceProofBMCOrFabric
	w.cfg.Policies = map[string]model.Policy{"default": pol}
	fencer := &countingFencer{Fencer: w.cloud, reads: map[string]int{}}
	w.cfg.Fencer, w.cfg.Fabric = fencer, w.cloud
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
	w.tick()
	if err := w.cloud.SetBMC("host-1", true, false); err != nil {
		t.Fatal(err)
	}
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	onProof := func() bool {
		for _, inc := range w.eng.OpenIncidents() {
			if plan.OnFabricProof(inc) {
				return true
			}
		}
		return false
	}
	w.until(2*time.Minute, "host-1 on the fabric proof", onProof)
	ticks, reads := 0, fencer.count("host-1")
	for onProof() && ticks < 60 {
		if err := w.tick(); err != nil {
			t.Fatal(err)
		}
		ticks++
	}
	got := fencer.count("host-1") - reads
	if max := ticks/int(30) + 1; got > max {
		t.Fatalf("host-1's silent BMC read %d times in %d reconciles on the fabric proof, want at most %d (every PowerEvery)", got, ticks, max)
	}
	if in := w.lastIncident(); in.State != model.IncidentResolved {
		t.Fatalf("incident %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
	t.Logf("%d reconciles on the fabric proof, %d reads of the silent BMC", ticks, got)
}
