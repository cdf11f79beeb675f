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

// start starts Vigil as a new process would: the previous one's store (and so its
// lease) is closed first, as a process's files close when it ends, then the file is
// opened again and a new engine claims it.
func (w *world) start() {
	w.t.Helper()
	if w.db != nil {
		w.db.Close()
	}
	db, err := sqlite.Open(context.Background(), w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { db.Close() })
	w.db = db
	w.cfg.Store = db
	w.newEngine()
}

// newEngine starts a new engine on the open store: it claims the recoveries.
func (w *world) newEngine() {
	w.t.Helper()
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

func TestLadderClimbsInOrderWhenEachRungFails(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("db", w.ids[0])
	w.tick()
	w.cloud.BreakServer(w.ids[0], true) // every action on it ends in ERROR
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	w.until(10*time.Minute, "incident closed", func() bool {
		return len(w.eng.OpenIncidents()) == 0 && w.now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) > 10*time.Second
	})
	in := w.lastIncident()
	var ladder []string
	for _, st := range in.Steps {
		ladder = append(ladder, string(st.Action))
	}
	if want := []string{"reboot", "hard-reboot", "rebuild"}; !slices.Equal(ladder, want) {
		t.Fatalf("ladder = %v, want %v\n%s", ladder, want, w.timeline())
	}
	// The last rung, evacuate, needs a fenced host: on a live host Vigil does not try
	// (it would make two copies); the incident escalates with that reason, cluster Red.
	if in.State != model.IncidentEscalated || !strings.Contains(in.Reason, "next rung is evacuate") || w.cloud.Calls()["evacuate"] != 0 {
		t.Fatalf("incident %s: %q, want escalated naming the refusal", in.State, in.Reason)
	}
	if h := w.health("db"); h != model.Red {
		t.Fatalf("health = %s, want Red", h)
	}
	// The operator repairs it: the server comes back, the cluster is Green again.
	w.cloud.BreakServer(w.ids[0], false)
	if err := w.cloud.Reboot(context.Background(), w.ids[0], true); err != nil {
		t.Fatal(err)
	}
	w.until(30*time.Second, "cluster Green after repair", func() bool { return w.health("db") == model.Green })
}

func TestLadderStopsAtTheRungThatWorks(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("db", w.ids[0])
	w.tick()
	w.cloud.BreakServer(w.ids[0], true)
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	// Reboot and hard reboot end in ERROR; the rebuild works.
	w.until(time.Minute, "hard reboot issued", func() bool {
		in := w.eng.OpenIncidents()
		return len(in) == 1 && len(in[0].Steps) == 2 && in[0].Steps[1].State == model.StepIssued
	})
	w.cloud.BreakServer(w.ids[0], false)
	w.until(2*time.Minute, "server ACTIVE", func() bool { return w.health("db") == model.Green })
	in := w.lastIncident()
	if got := actions(in); !slices.Equal(got, []string{"reboot(hard):failed", "hard-reboot:failed", "rebuild:succeeded"}) {
		t.Fatalf("steps = %v\n%s", got, w.timeline())
	}
	if s := w.status(w.ids[0]); s.ID != w.ids[0] || s.Name != "vm-1-0" || s.Host != "host-1" {
		t.Fatalf("rebuild changed identity or place: %+v", s)
	}
}

func TestOwnerStoppedServerIsNotFailed(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.cluster("web", w.ids[0], w.ids[1])
	w.tick()
	if err := w.cloud.Stop(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		w.tick()
	}
	// The engine must have seen the stop, or the test below proves nothing.
	seen := false
	for _, s := range w.eng.Servers() {
		if s.ID == w.ids[0] {
			seen = s.Status == model.StatusShutoff && s.Intent == model.IntentOff
			if s.Verdict.Failed {
				t.Fatalf("verdict on a server its owner stopped: %s", s.Verdict)
			}
		}
	}
	if !seen {
		t.Fatalf("the engine never saw %s SHUTOFF by its owner: %+v", w.ids[0], w.eng.Servers())
	}
	if in := w.eng.OpenIncidents(); len(in) != 0 {
		t.Fatalf("incident opened for a server its owner stopped: %+v", in)
	}
	if calls := w.cloud.Calls(); calls["reboot"]+calls["hard-reboot"] != 0 {
		t.Fatalf("actions taken on a stopped server: %v", calls)
	}
}

func TestDeadHostIsFencedThenEvacuated(t *testing.T) {
	w := newWorld(t, 4, 3)
	w.cluster("web", w.ids[0], w.ids[1], w.ids[3])
	w.cluster("db", w.ids[2])
	w.tick()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	sawRed := false
	w.until(2*time.Minute, "all protected servers ACTIVE elsewhere", func() bool {
		sawRed = sawRed || w.health("db") == model.Red
		for _, id := range w.ids[:3] {
			if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
				return false
			}
		}
		return w.health("web") == model.Green && w.health("db") == model.Green
	})
	if !sawRed {
		t.Fatal("cluster db never turned Red while its only server was down (no member healthy)")
	}
	in := w.lastIncident()
	if in.Subject.Kind != model.KindHost || in.State != model.IncidentResolved {
		t.Fatalf("last incident %s %s: %s", in.Subject, in.State, in.Reason)
	}
	got := actions(in)
	want := []string{"fence:succeeded", "mark-down:succeeded", "evacuate:succeeded", "evacuate:succeeded", "evacuate:succeeded"}
	if !slices.Equal(got, want) {
		t.Fatalf("steps = %v, want %v\n%s", got, want, w.timeline())
	}
	// Every evacuation started after the fence and the mark-down were both confirmed
	// (a zero time would make these comparisons pass on anything).
	fenced, markedDown := in.Steps[0].Finished, in.Steps[1].Finished
	if fenced.IsZero() || markedDown.IsZero() {
		t.Fatalf("fence confirmed at %v, mark-down at %v: want both journaled", fenced, markedDown)
	}
	for _, st := range in.Steps[2:] {
		if st.Started.IsZero() || st.Started.Before(fenced) || st.Started.Before(markedDown) {
			t.Fatalf("evacuation of %s started at %s, before the fence (%s) and the mark-down (%s) were confirmed\n%s", st.Server, st.Started, fenced, markedDown, w.timeline())
		}
	}
	for id, copies := range w.cloud.Copies() {
		if len(copies) > 1 {
			t.Fatalf("server %s runs twice: %v", id, copies)
		}
	}
	t.Log("\n" + w.timeline())
}

func TestHostDownWithinGraceIsNotDead(t *testing.T) {
	w := newWorld(t, 3, 1)
	w.cluster("web", w.ids[0])
	w.tick()
	// Isolated for a moment: the service is reported down, but for less than the grace.
	if err := w.cloud.IsolateHost("host-1", true); err != nil {
		t.Fatal(err)
	}
	w.until(time.Minute, "host suspect", func() bool { return w.eng.Hosts()[0].Verdict.Host == string(model.HostSuspect) })
	for range 5 {
		w.tick()
	}
	if err := w.cloud.IsolateHost("host-1", false); err != nil {
		t.Fatal(err)
	}
	w.until(time.Minute, "host up", func() bool { return w.eng.Hosts()[0].Verdict.Host == string(model.HostUp) })
	if c := w.cloud.Calls(); c["bmc-power-off"]+c["evacuate"]+c["force-down"] != 0 {
		t.Fatalf("a host down for less than its grace was acted on: %v", c)
	}
	if w.cloud.HostPower("host-1") != model.PowerOn {
		t.Fatal("host-1 was fenced")
	}
}

// The whole ladder: reboot, hard reboot and rebuild fail in place; when the host
// itself then fails, the last rung, evacuate, is taken through the host's fence.
func TestLadderEndsInEvacuationThroughTheFence(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("db", w.ids[0])
	w.tick()
	w.cloud.BreakServer(w.ids[0], true)
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	w.until(5*time.Minute, "rebuild issued", func() bool {
		in := w.eng.OpenIncidents()
		return len(in) == 1 && len(in[0].Steps) == 3 && in[0].Steps[2].State == model.StepIssued
	})
	w.cloud.BreakServer(w.ids[0], false)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(3*time.Minute, "server ACTIVE on another host", func() bool {
		s := w.status(w.ids[0])
		return s.Status == model.StatusActive && s.Host != "host-1" && w.health("db") == model.Green
	})
	incs, err := w.db.Incidents(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := len(incs) - 1; i >= 0; i-- {
		for _, st := range incs[i].Steps {
			all = append(all, string(st.Action))
		}
	}
	// The rebuild was left hanging on the dead host: it is reset before the evacuation.
	want := []string{"reboot", "hard-reboot", "rebuild", "fence", "mark-down", "reset-state", "evacuate"}
	if !slices.Equal(all, want) {
		t.Fatalf("steps %v, want %v\n%s", all, want, w.timeline())
	}
	if incs[1].State != model.IncidentSuperseded || incs[0].State != model.IncidentResolved {
		t.Fatalf("server incident %s (%s), host incident %s", incs[1].State, incs[1].Reason, incs[0].State)
	}
}
