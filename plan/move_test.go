package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// drainFixture: 3 hosts; protected a, b on h1; an open drain of h1.
func drainFixture() *fixture {
	f := newFixture(3)
	f.server("b", "h1", model.StatusActive)
	f.in.Clusters[0].Members = []string{"a", "b"}
	f.in.Open = []model.Incident{{ID: 7, Subject: model.Subject{Kind: model.KindDrain, ID: "h1"}, State: model.IncidentOpen,
		Rule: model.RuleDrain, Opened: t0}}
	return f
}

func (f *fixture) moveTo(id, host, status string) {
	s := f.in.Servers[id]
	s.Host, s.Status, s.TaskState = host, status, ""
	f.in.Servers[id] = s
}

// A drain migrates each protected server live once; ACTIVE elsewhere it resolves.
func TestDrainLiveMigratesEachServerOnce(t *testing.T) {
	f := drainFixture()
	if got := steps(f.run(model.StepIssued)); got != "live-migrate,live-migrate" {
		t.Fatalf("steps %q, want two live migrations", got)
	}
	for _, id := range []string{"a", "b"} { // Nova sets the task before it answers
		s := f.in.Servers[id]
		s.Status, s.TaskState = model.StatusMigrating, "migrating"
		f.in.Servers[id] = s
	}
	f.later(time.Second)
	if got := steps(f.run(model.StepIssued)); got != "" {
		t.Fatalf("migrations in flight: steps %q, want none", got)
	}
	f.moveTo("a", "h2", model.StatusActive)
	f.moveTo("b", "h3", model.StatusActive)
	f.later(time.Second)
	out := f.run(model.StepIssued)
	if steps(out) != "" || changes(out) != "resolved" || !strings.Contains(f.in.Open[0].Reason, "a → h2, b → h3") {
		t.Fatalf("steps %q changes %q (%s), want resolved naming where each went", steps(out), changes(out), f.in.Open[0].Reason)
	}
}

// A live migration that ends with the server idle on its source (rolled back) is
// followed by a cold one, whose landing (VERIFY_RESIZE elsewhere) is confirmed.
func TestDrainFallsBackToColdAndConfirms(t *testing.T) {
	f := drainFixture()
	f.in.Clusters[0].Members = []string{"a"}
	delete(f.in.Servers, "b")
	f.run(model.StepIssued)
	f.later(2 * time.Second) // a listing after the step shows it idle on its source
	if got := steps(f.run(model.StepIssued)); got != "cold-migrate" {
		t.Fatalf("after the rollback: steps %q, want cold-migrate", got)
	}
	if st := f.in.Open[0].Steps[0]; st.State != model.StepFailed || !strings.Contains(st.Error, "migration-rolled-back") {
		t.Fatalf("live step %s (%s), want failed: rolled back", st.State, st.Error)
	}
	f.moveTo("a", "h2", model.StatusVerify)
	f.later(2 * time.Second)
	if got := steps(f.run(model.StepIssued)); got != "confirm-migrate→h2" {
		t.Fatalf("landed in VERIFY_RESIZE: steps %q, want confirm-migrate", got)
	}
	f.moveTo("a", "h2", model.StatusActive)
	f.later(2 * time.Second)
	if out := f.run(model.StepIssued); changes(out) != "resolved" {
		t.Fatalf("confirmed: changes %q (%s)", changes(out), f.in.Open[0].Reason)
	}
}

// Never migrate off a host that is down: the drain stops, saying why.
func TestDrainNeverMigratesOffADownHost(t *testing.T) {
	for _, c := range []struct {
		name string
		host func(*fixture)
	}{
		{"down", func(f *fixture) { f.hostDown("h1") }},
		{"forced down", func(f *fixture) { h := f.in.Hosts["h1"]; h.ForcedDown = true; f.in.Hosts["h1"] = h }},
		{"power off", func(f *fixture) { h := f.in.Hosts["h1"]; h.Power = model.PowerOff; f.in.Hosts["h1"] = h }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := drainFixture()
			c.host(f)
			out := f.run(model.StepIssued)
			for _, st := range out.Steps {
				if model.IsMove(st.Action) {
					t.Fatalf("%s planned off a host that is %s", st.Action, c.name)
				}
			}
			var drain model.Incident
			for _, in := range f.in.Open {
				if in.Subject.Kind == model.KindDrain {
					drain = in
				}
			}
			if drain.State != model.IncidentEscalated || !strings.Contains(drain.Reason, "migrate-needs-live-source") {
				t.Fatalf("drain %s (%s), want escalated: migrate-needs-live-source", drain.State, drain.Reason)
			}
		})
	}
}

// The live-migrate rung of a server's ladder: the server moves, and it is resolved
// once ACTIVE on another host.
func TestLiveMigrateRung(t *testing.T) {
	f := newFixture(2)
	pol := model.DefaultPolicy()
	pol.Ladders[model.FaultCrashed] = []model.Action{model.ActLiveMigrate}
	f.in.Policies["default"] = pol
	f.server("a", "h1", model.StatusError)
	v := f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
	v.Fault = model.FaultCrashed
	f.in.Verdicts[v.Subject] = v
	if got := steps(f.run(model.StepIssued)); got != "live-migrate" {
		t.Fatalf("steps %q, want live-migrate", got)
	}
	f.moveTo("a", "h2", model.StatusActive)
	f.later(time.Second)
	if out := f.run(model.StepIssued); changes(out) != "resolved" || !strings.Contains(f.in.Open[0].Reason, "ACTIVE on host h2 after live-migrate") {
		t.Fatalf("changes %q (%s)", changes(out), f.in.Open[0].Reason)
	}
}

// An isolated host is left alone by the default policy (notify-only): no incident,
// no step. A policy whose ladders.host-isolated lists live-migrate moves its servers,
// but only while Nova still reaches the compute: off a compute Nova sees down it
// waits (the migration would hang, and a host whose agent was heard seconds ago
// may have just died: sim seed 2984).
func TestIsolatedHostMoves(t *testing.T) {
	for _, c := range []struct {
		name    string
		moves   bool
		service model.ServiceState
		steps   string
		state   model.IncidentState
	}{
		{"default policy", false, model.ServiceDown, "", ""},
		{"moving policy, Nova reaches it", true, model.ServiceUp, "live-migrate", model.IncidentOpen},
		{"moving policy, Nova does not", true, model.ServiceDown, "", model.IncidentWaiting},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(2)
			if c.moves {
				pol := model.DefaultPolicy()
				pol.Ladders[model.FaultHostIsolated] = []model.Action{model.ActLiveMigrate, model.ActColdMigrate}
				f.in.Policies["default"] = pol
			}
			subj := model.Subject{Kind: model.KindHost, ID: "h1"}
			f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: c.service}
			f.in.Verdicts[subj] = model.Verdict{Subject: subj, Host: string(model.HostIsolated), Rule: "host-heard-on-another-path", Since: t0}
			out := f.run(model.StepIssued)
			if got := steps(out); got != c.steps {
				t.Fatalf("steps %q, want %q", got, c.steps)
			}
			if c.state == "" {
				if len(out.Open) != 0 {
					t.Fatalf("an incident opened for an isolated host: %+v", out.Open)
				}
				return
			}
			if in := f.in.Open[0]; in.State != c.state {
				t.Fatalf("incident %s (%s), want %s", in.State, in.Reason, c.state)
			}
		})
	}
}
