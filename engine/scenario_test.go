package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// world is a sim cloud, a SQLite store in a temp dir and an engine on a manual clock.
type world struct {
	t      *testing.T
	now    time.Time
	cloud  *sim.Cloud
	db     *sqlite.DB
	path   string
	eng    *engine.Engine
	ids    []string
	events []model.Event
	cfg    engine.Config
}

func newWorld(t *testing.T, hosts, perHost int) *world {
	t.Helper()
	w := &world{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w.cloud = sim.New(sim.DefaultConfig(), w.clock)
	for h := 1; h <= hosts; h++ {
		name := fmt.Sprintf("host-%d", h)
		w.cloud.AddHost(name, "seg-a", perHost*3)
		for i := 0; i < perHost; i++ {
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
	w.cfg = engine.Config{Compute: w.cloud, Fencer: w.cloud, Now: w.clock,
		Policies: map[string]model.Policy{"default": pol}, FullEvery: 10 * time.Second,
		OnEvent: func(e model.Event) { w.events = append(w.events, e) }}
	w.start()
	w.tick()
	return w
}

func (w *world) clock() time.Time { return w.now }

func (w *world) start() {
	w.t.Helper()
	db, err := sqlite.Open(context.Background(), w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { db.Close() })
	w.db = db
	w.cfg.Store = db
	eng, err := engine.New(context.Background(), w.cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.eng = eng
}

func (w *world) tick() error {
	w.now = w.now.Add(time.Second)
	return w.eng.Tick(context.Background())
}

// until ticks (one virtual second each) until cond holds, failing after limit.
func (w *world) until(limit time.Duration, what string, cond func() bool) {
	w.t.Helper()
	end := w.now.Add(limit)
	for !cond() {
		if w.now.After(end) {
			w.t.Fatalf("after %s: %s never happened\nevents:\n%s", limit, what, w.timeline())
		}
		if err := w.tick(); err != nil {
			w.t.Fatalf("tick: %v", err)
		}
	}
}

func (w *world) timeline() string {
	var b strings.Builder
	for _, e := range w.events {
		fmt.Fprintf(&b, "  %s %-8s %-16s %s\n", e.At.Format("15:04:05"), e.Kind, e.Subject, e.Message)
	}
	return b.String()
}

func (w *world) cluster(name string, members ...string) {
	w.t.Helper()
	if err := w.eng.CreateCluster(context.Background(), model.Cluster{Name: name, Members: members, Desired: len(members), Policy: "default"}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) health(name string) model.ClusterHealth {
	for _, c := range w.eng.Clusters() {
		if c.Name == name {
			return c.Health
		}
	}
	w.t.Fatalf("no cluster %s", name)
	return ""
}

func (w *world) status(id string) model.Server {
	s, _ := w.cloud.Server(id)
	return s
}

func (w *world) lastIncident() model.Incident {
	w.t.Helper()
	incs, err := w.db.Incidents(context.Background(), 1)
	if err != nil || len(incs) == 0 {
		w.t.Fatalf("no incident: %v", err)
	}
	return incs[0]
}

func actions(in model.Incident) []string {
	var out []string
	for _, st := range in.Steps {
		a := string(st.Action)
		if st.Action == model.ActReboot && st.Hard {
			a += "(hard)"
		}
		out = append(out, a+":"+string(st.State))
	}
	return out
}

func TestCrashedServerIsRebooted(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("web", w.ids[0], w.ids[1])
	w.tick()
	if h := w.health("web"); h != model.Green {
		t.Fatalf("health before fault = %s, want Green", h)
	}
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	w.until(5*time.Second, "cluster turns Yellow", func() bool { return w.health("web") == model.Yellow })
	w.until(30*time.Second, "server ACTIVE again", func() bool {
		return w.status(w.ids[0]).Status == model.StatusActive && w.health("web") == model.Green
	})
	in := w.lastIncident()
	if in.State != model.IncidentResolved {
		t.Fatalf("incident state %s (%s), want resolved", in.State, in.Reason)
	}
	if got := actions(in); !slices.Equal(got, []string{"reboot(hard):succeeded"}) {
		t.Fatalf("steps = %v, want one reboot (hard: ERROR refuses soft)", got)
	}
	t.Log("\n" + w.timeline())
}
