package explain_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/explain"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/sim"
	"github.com/vigil-ha/vigil/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// journal runs one seeded simulation (plain world, the given faults) and returns
// its journal: every incident and every event, on the virtual clock.
func journal(t *testing.T, seed uint64, faults []string, hosts int, dry ...bool) ([]model.Incident, []model.Event) {
	t.Helper()
	dir := t.TempDir()
	cfg := sim.SmallConfig()
	cfg.Hosts, cfg.Faults, cfg.Settings, cfg.Dir = hosts, faults, []string{}, dir
	cfg.DryRun = len(dry) > 0 && dry[0]
	r, err := sim.Run(seed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	incs, err := db.Incidents(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var evs []model.Event
	for after := int64(0); ; {
		page, err := db.Events(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		evs = append(evs, page...)
		after = page[len(page)-1].ID
	}
	return incs, evs
}

func golden(t *testing.T, name string, c explain.Chain) {
	t.Helper()
	var b bytes.Buffer
	if err := c.Text(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./explain -update to write it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Errorf("explain %s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, b.String(), want)
	}
}

// find returns the first incident that matches.
func find(t *testing.T, incs []model.Incident, what string, ok func(model.Incident) bool) model.Incident {
	t.Helper()
	for i := len(incs) - 1; i >= 0; i-- { // the store lists the newest first
		if ok(incs[i]) {
			return incs[i]
		}
	}
	t.Fatalf("no incident: %s", what)
	return model.Incident{}
}

func hasStep(in model.Incident, a model.Action, s model.StepState) bool {
	for _, st := range in.Steps {
		if st.Action == a && st.State == s {
			return true
		}
	}
	return false
}

// A server crash answered by a reboot in place.
func TestExplainCrashReboot(t *testing.T) {
	incs, evs := journal(t, 1, []string{"server-crash"}, 6)
	in := find(t, incs, "a server incident resolved by a reboot", func(in model.Incident) bool {
		return in.Subject.Kind == model.KindServer && in.State == model.IncidentResolved && hasStep(in, model.ActReboot, model.StepSucceeded)
	})
	golden(t, "crash-reboot", explain.Build(in, evs))
}

// A host that lost its power: fenced, its service forced down, its servers evacuated.
func TestExplainHostEvacuation(t *testing.T) {
	incs, evs := journal(t, 1, []string{"host-power-loss"}, 6)
	in := find(t, incs, "a host incident with a fence, a mark-down and an evacuation", func(in model.Incident) bool {
		return in.Subject.Kind == model.KindHost && hasStep(in, model.ActFence, model.StepSucceeded) &&
			hasStep(in, model.ActMarkDown, model.StepSucceeded) && hasStep(in, model.ActEvacuate, model.StepSucceeded)
	})
	golden(t, "host-evacuation", explain.Build(in, evs))
}

// Many hosts down at once: the brake holds, nothing is fenced.
func TestExplainBrakedMassFailure(t *testing.T) {
	incs, evs := journal(t, 1, []string{"segment-partition"}, 6)
	in := find(t, incs, "a host incident held by the brake, with no fence", func(in model.Incident) bool {
		return in.Subject.Kind == model.KindHost && len(in.Steps) == 0 && in.Reason != ""
	})
	c := explain.Build(in, evs)
	if len(c.Waits) == 0 || !strings.Contains(c.Waits[0], "brake engaged") {
		t.Errorf("the chain does not say the brake held it: waits %q", c.Waits)
	}
	golden(t, "braked-mass-failure", c)
}

// The same crash under a dry-run policy: the reboot is shown as "would have".
func TestExplainDryRunCrash(t *testing.T) {
	incs, evs := journal(t, 1, []string{"server-crash"}, 6, true)
	in := find(t, incs, "a server incident with a would-have reboot", func(in model.Incident) bool {
		return in.Subject.Kind == model.KindServer && hasStep(in, model.ActReboot, model.StepWould)
	})
	var b bytes.Buffer
	c := explain.Build(in, evs)
	_ = c.Text(&b)
	if !strings.Contains(b.String(), "Would have taken reboot") || !c.Incident.DryRun {
		t.Errorf("dry run not shown as would-have:\n%s", b.String())
	}
	golden(t, "dry-run-crash", c)
}
