package engine_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
	"github.com/vigil-ha/vigil/store"
)

func count(acts []model.InstanceAction, name string) int {
	n := 0
	for _, a := range acts {
		if a.Action == name {
			n++
		}
	}
	return n
}

// crashAt makes the engine die at one point of the journal protocol, once, for the
// first step of the given action.
func crashAt(w *world, point string, action model.Action) *bool {
	crashed := new(bool)
	hook := func(st model.Step) error {
		if st.Action == action && !*crashed {
			*crashed = true
			return recover.ErrCrash
		}
		return nil
	}
	switch point {
	case "after-intent":
		w.cfg.Hook = recover.Hook{AfterIntent: hook}
	case "after-action":
		w.cfg.Hook = recover.Hook{AfterAction: hook}
	}
	w.start() // a fresh engine with the hook, same store
	return crashed
}

func TestRestartMidEvacuationNeverRepeatsAStep(t *testing.T) {
	for _, point := range []string{"after-intent", "after-action"} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t, 3, 2)
			w.cluster("web", w.ids[0], w.ids[1])
			crashed := crashAt(w, point, model.ActEvacuate)
			if err := w.cloud.KillHost("host-1"); err != nil {
				t.Fatal(err)
			}
			for !*crashed {
				if err := w.tick(); err != nil && !errors.Is(err, recover.ErrCrash) {
					t.Fatal(err)
				}
				if w.now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) > 2*time.Minute {
					t.Fatal("never reached the crash point")
				}
			}
			// A new Vigil on the same SQLite file (the crashed one's file closed with
			// it): it claims the recovery and resumes it.
			w.cfg.Hook = recover.Hook{}
			w.start()
			w.until(time.Minute, "evacuations done", func() bool { return len(w.eng.OpenIncidents()) == 0 })
			t.Log("\n" + w.timeline())
			in := w.lastIncident()
			if in.State != model.IncidentResolved {
				t.Fatalf("incident %s: %s\n%s", in.State, in.Reason, w.timeline())
			}
			if !strings.Contains(w.timeline(), "settled: evacuate") {
				t.Fatalf("the new engine did not resume the step in flight\n%s", w.timeline())
			}
			for _, id := range w.ids[:2] {
				acts, err := w.cloud.Actions(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if n := count(acts, cloud.ActionEvacuate); n != 1 {
					t.Fatalf("server %s evacuated %d times, want exactly 1\n%s", id, n, w.timeline())
				}
				if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
					t.Fatalf("server %s: %s on %s", id, s.Status, s.Host)
				}
			}
			if c := w.cloud.Calls(); c["bmc-power-off"] != 1 || c["evacuate"] != 2 {
				t.Fatalf("calls %v: want one power-off and two evacuations", c)
			}
			// A replaced engine is fenced out: its lease is taken over, so it opens no
			// incident, takes no step and writes nothing. (Two processes cannot share
			// the file while both live, the store's lock sees to that; two engines on
			// one open store, as in one process, can.)
			old := w.eng
			w.newEngine()
			w.now = w.now.Add(time.Second)
			if err := w.cloud.Crash(w.ids[0]); err != nil {
				t.Fatal(err)
			}
			w.until(10*time.Second, "the new engine answers a new crash", func() bool {
				in := w.lastIncident()
				return in.Subject.ID == w.ids[0] && in.State == model.IncidentResolved
			})
			// The old one sees a new failure and tries to open an incident for it.
			if err := w.cloud.Crash(w.ids[1]); err != nil {
				t.Fatal(err)
			}
			w.now = w.now.Add(time.Second)
			before := w.cloud.Calls()
			err := old.Tick(context.Background())
			if err != nil && !errors.Is(err, store.ErrStale) {
				t.Fatalf("old engine tick: %v, want nothing done or ErrStale\n%s", err, w.timeline())
			}
			if old.Leads() {
				t.Fatalf("the replaced engine still leads: %+v", old.Leadership())
			}
			if in := w.lastIncident(); in.Subject.ID == w.ids[1] {
				t.Fatalf("the replaced engine opened incident %d for %s\n%s", in.ID, w.ids[1], w.timeline())
			}
			// A standby reads (lists, BMC power): it watches. It changes nothing.
			reads := func(k string, _ int) bool {
				return strings.HasPrefix(k, "list-") || k == "actions" || k == "bmc-power-status" || k == "bmc-identity"
			}
			after := w.cloud.Calls()
			maps.DeleteFunc(before, reads)
			maps.DeleteFunc(after, reads)
			if !maps.Equal(before, after) {
				t.Fatalf("the replaced engine acted: calls %v, were %v", after, before)
			}
		})
	}
}
