package engine_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// slowEvacuations is the simulated cloud whose evacuate calls take a second each
// (on the bubble's clock).
type slowEvacuations struct{ *sim.Cloud }

func (c slowEvacuations) Evacuate(ctx context.Context, server, target string) error {
	time.Sleep(time.Second)
	return c.Cloud.Evacuate(ctx, server, target)
}

// evacuationRound kills host-1 with 8 protected servers and returns how long (on
// the bubble's clock) the reconcile that evacuated them took, and the timeline.
func evacuationRound(t *testing.T) (took time.Duration, timeline string) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 3, 8)
		w.cfg.Compute = slowEvacuations{w.cloud}
		w.start()
		w.tick()
		w.cluster("web", w.ids[:8]...)
		w.tick()
		if err := w.cloud.KillHost("host-1"); err != nil {
			t.Fatal(err)
		}
		for range 180 {
			start := time.Now()
			if err := w.tick(); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			n := 0
			for _, in := range w.eng.OpenIncidents() {
				for _, st := range in.Steps {
					if st.Action == model.ActEvacuate {
						n++
					}
				}
			}
			if n > 0 {
				if n != 8 {
					t.Fatalf("%d evacuations in the round, want the 8 together\n%s", n, w.timeline())
				}
				took, timeline = d, w.timeline()
				return
			}
		}
		t.Fatalf("no evacuation in 3 minutes\n%s", w.timeline())
	})
	return took, timeline
}

// A dead host's 8 evacuations, each call taking a second, take one reconcile of
// 2 s (per_host 4: two waves), not 8 s; the journal is the same run after run.
func TestEngineEvacuatesARoundAtOnce(t *testing.T) {
	took, first := evacuationRound(t)
	if took != 2*time.Second {
		t.Fatalf("the round of 8 evacuations of 1 s each took %s, want 2s (4 at once off one host)", took)
	}
	t.Logf("8 evacuations of 1 s each off one host: the round took %s (one at a time: 8s)", took)
	for range 2 {
		if _, again := evacuationRound(t); again != first {
			t.Fatalf("the journal differs between runs:\n%s\n---\n%s", first, again)
		}
	}
}
