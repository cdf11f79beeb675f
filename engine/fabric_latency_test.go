package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
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
