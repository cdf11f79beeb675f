package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// drainWorld: 3 hosts of 3 servers; host-1's three are protected; Vigil migrates
// through the simulated cloud's Migrator.
func drainWorld(t *testing.T) *world {
	w := newWorld(t, 3, 3)
	w.cfg.Migrator = w.cloud.Migrator()
	w.newEngine()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1], w.ids[2])
	w.tick()
	return w
}

func (w *world) drainIncident() model.Incident {
	w.t.Helper()
	incs, err := w.db.Incidents(context.Background(), 50)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, in := range incs {
		if in.Subject.Kind == model.KindDrain {
			return in
		}
	}
	w.t.Fatalf("no drain incident\n%s", w.timeline())
	return model.Incident{}
}

// actionsOf counts the instance actions of a server by name.
func (w *world) actionsOf(id string) map[string]int {
	w.t.Helper()
	acts, err := w.cloud.Actions(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range acts {
		out[a.Action]++
	}
	return out
}

func TestDrainMovesEachProtectedServerOnceWithOneLiveMigration(t *testing.T) {
	w := drainWorld(t)
	inc, err := w.eng.Drain(context.Background(), "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Steps) != 3 {
		t.Fatalf("drain planned %d steps at once, want 3 live migrations: %+v", len(inc.Steps), inc.Steps)
	}
	w.until(time.Minute, "drain done", func() bool { return len(w.eng.OpenIncidents()) == 0 })
	if in := w.drainIncident(); in.State != model.IncidentResolved || !strings.Contains(in.Reason, "3 protected servers moved") {
		t.Fatalf("drain %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
	for _, id := range w.ids[:3] {
		if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
			t.Fatalf("server %s: %s on %s, want ACTIVE elsewhere", id, s.Status, s.Host)
		}
		if n := w.actionsOf(id)[cloud.ActionLiveMigration]; n != 1 {
			t.Fatalf("server %s live-migrated %d times, want 1\n%s", id, n, w.timeline())
		}
	}
	if s := w.status(w.ids[3]); s.Host != "host-2" {
		t.Fatalf("an unprotected server moved: %+v", s)
	}
	// A second drain request while none is open starts a new one with nothing to do.
	if _, err := w.eng.Drain(context.Background(), "host-1"); err != nil {
		t.Fatal(err)
	}
}

func TestDrainResumesAfterACrashWithoutMigratingTwice(t *testing.T) {
	for _, point := range []string{"after-intent", "after-action"} {
		t.Run(point, func(t *testing.T) {
			w := drainWorld(t)
			crashed := crashAt(w, point, model.ActLiveMigrate)
			w.tick()
			if _, err := w.eng.Drain(context.Background(), "host-1"); !errors.Is(err, recover.ErrCrash) {
				t.Fatalf("drain: %v, want the simulated crash", err)
			}
			if !*crashed {
				t.Fatal("never crashed")
			}
			w.cfg.Hook = recover.Hook{}
			w.start() // a new process on the same file
			w.until(time.Minute, "drain done", func() bool { return len(w.eng.OpenIncidents()) == 0 })
			if in := w.drainIncident(); in.State != model.IncidentResolved {
				t.Fatalf("drain %s: %s\n%s", in.State, in.Reason, w.timeline())
			}
			t.Log("\n" + w.timeline())
			if point == "after-action" && !strings.Contains(w.timeline(), "settled: live-migrate "+w.ids[0]+" from host-1 was taken") {
				t.Fatalf("the restarted engine did not settle the migration in flight\n%s", w.timeline())
			}
			for _, id := range w.ids[:3] {
				if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
					t.Fatalf("server %s: %s on %s", id, s.Status, s.Host)
				}
				if n := w.actionsOf(id)[cloud.ActionLiveMigration]; n != 1 {
					t.Fatalf("server %s live-migrated %d times, want exactly 1\n%s", id, n, w.timeline())
				}
			}
		})
	}
}

// A live migration refused (409) falls back to a cold one, confirmed by Vigil.
func TestDrainFallsBackToColdMigrationAndConfirmsIt(t *testing.T) {
	w := drainWorld(t)
	w.cloud.FailNext("live-migrate", cloud.ErrConflict)
	if _, err := w.eng.Drain(context.Background(), "host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(time.Minute, "drain done", func() bool { return len(w.eng.OpenIncidents()) == 0 })
	if in := w.drainIncident(); in.State != model.IncidentResolved {
		t.Fatalf("drain %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
	cold := 0
	for _, id := range w.ids[:3] {
		a := w.actionsOf(id)
		if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
			t.Fatalf("server %s: %s on %s\n%s", id, s.Status, s.Host, w.timeline())
		}
		if a[cloud.ActionMigrate] == 1 {
			cold++
			if a[cloud.ActionConfirmResize] != 1 || a[cloud.ActionLiveMigration] != 0 {
				t.Fatalf("server %s actions %v: want one migrate, one confirmResize, no live migration", id, a)
			}
		}
	}
	if cold != 1 {
		t.Fatalf("%d cold migrations, want 1 (the refused live one)\n%s", cold, w.timeline())
	}
}

// Migrations that the cloud rolls back leave the server on its source: the drain
// escalates naming it, after one live and one cold try.
func TestDrainEscalatesNamingAServerThatCannotMove(t *testing.T) {
	w := drainWorld(t)
	w.cloud.FailMigrations(w.ids[1], true)
	if _, err := w.eng.Drain(context.Background(), "host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(2*time.Minute, "drain over", func() bool { return len(w.eng.OpenIncidents()) == 0 })
	in := w.drainIncident()
	if in.State != model.IncidentEscalated || !strings.Contains(in.Reason, w.ids[1]+": tried live-migrate → cold-migrate") ||
		!strings.Contains(in.Reason, "2 protected servers moved") {
		t.Fatalf("drain %s: %s\n%s", in.State, in.Reason, w.timeline())
	}
	if a := w.actionsOf(w.ids[1]); a[cloud.ActionLiveMigration] != 1 || a[cloud.ActionMigrate] != 1 {
		t.Fatalf("stuck server actions %v, want one live and one cold try", a)
	}
	if s := w.status(w.ids[1]); s.Host != "host-1" || s.Status != model.StatusActive {
		t.Fatalf("stuck server %+v", s)
	}
}

// A dead host is never drained: its servers are evacuated after a fence instead.
func TestDrainRefusesADownHost(t *testing.T) {
	w := drainWorld(t)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.run(20 * time.Second)
	_, err := w.eng.Drain(context.Background(), "host-1")
	if !errors.Is(err, engine.ErrDrainRefused) || !strings.Contains(err.Error(), "not alive") {
		t.Fatalf("drain of a dead host: %v", err)
	}
	for _, id := range w.ids[:3] {
		if n := w.actionsOf(id)[cloud.ActionLiveMigration]; n != 0 {
			t.Fatalf("server %s live-migrated off a dead host", id)
		}
	}
}
