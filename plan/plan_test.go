package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct{ in Input }

// newFixture: hosts h1..hN up (capacity 10, segment s), server a (cluster c) on h1.
func newFixture(n int) *fixture {
	f := &fixture{in: Input{Now: t0, Hosts: map[string]model.Host{}, Servers: map[string]model.Server{},
		Verdicts: map[model.Subject]model.Verdict{}, Policies: map[string]model.Policy{"default": model.DefaultPolicy()},
		Clusters: []model.Cluster{{Name: "c", Members: []string{"a"}, Desired: 1, Policy: "default"}},
		Limits:   model.DefaultLimits(), CanFence: map[string]bool{}, LastClosed: map[model.Subject]model.Incident{}}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		f.in.Hosts[name] = model.Host{Name: name, Segment: "s", Service: model.ServiceUp, Capacity: 10}
		f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: name}] = model.Verdict{Host: "up", Since: t0}
		f.in.CanFence[name] = true
	}
	f.server("a", "h1", model.StatusActive)
	return f
}

func (f *fixture) server(id, host, status string) {
	f.in.Servers[id] = model.Server{ID: id, Host: host, Status: status}
	v := model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: id}, Server: "healthy", Rule: "server-active", Since: f.in.Now}
	if status == model.StatusError {
		v = model.Verdict{Subject: v.Subject, Server: "failed", Failed: true, Rule: "server-error", Evidence: []string{"ERROR"}, Since: f.in.Now}
	}
	f.in.Verdicts[v.Subject] = v
}

func (f *fixture) hostDown(name string) {
	f.in.Hosts[name] = model.Host{Name: name, Segment: "s", Service: model.ServiceDown, Capacity: 10}
	f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: name}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: name},
		Host: "down", Failed: true, Rule: "host-service-down-past-grace", Since: f.in.Now}
	for id, s := range f.in.Servers {
		if s.Host == name {
			f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}] = model.Verdict{Server: "failed", Failed: true, Rule: "server-host-down", Since: f.in.Now}
		}
	}
}

// run plans, then folds the output back into the open incidents (as the shell would,
// with the steps in the given state), and returns the output.
func (f *fixture) run(stepState model.StepState) Output {
	out := Plan(f.in)
	for _, inc := range out.Open {
		f.in.Open = append(f.in.Open, inc)
	}
	for i := range f.in.Open {
		inc := &f.in.Open[i]
		for _, u := range out.Updates {
			for j := range inc.Steps {
				if inc.Steps[j].ID == u.Step && u.Incident == inc.ID {
					inc.Steps[j].State, inc.Steps[j].Error, inc.Steps[j].Retryable, inc.Steps[j].Finished = u.State, u.Error, u.Retryable, f.in.Now
				}
			}
		}
		for _, st := range out.Steps {
			if st.Incident == inc.ID {
				st.ID = int64(len(inc.Steps) + 1 + int(-inc.ID)*100)
				if st.State == model.StepPlanned {
					st.State, st.Issued, st.Deadline = stepState, f.in.Now, f.in.Now.Add(st.Timeout)
				}
				inc.Steps = append(inc.Steps, st)
			}
		}
		for _, c := range out.Changes {
			if c.Incident == inc.ID {
				inc.State, inc.Reason = c.State, c.Reason
			}
		}
	}
	return out
}

func (f *fixture) later(d time.Duration) { f.in.Now = f.in.Now.Add(d) }

func steps(out Output) string {
	var s []string
	for _, st := range out.Steps {
		x := string(st.Action)
		if st.Hard && st.Action == model.ActReboot {
			x += "(hard)"
		}
		if st.Target != "" {
			x += "→" + st.Target
		}
		if st.State == model.StepSkipped {
			x += "(skipped)"
		}
		s = append(s, x)
	}
	return strings.Join(s, ",")
}

func changes(out Output) string {
	var s []string
	for _, c := range out.Changes {
		s = append(s, string(c.State))
	}
	return strings.Join(s, ",")
}

func TestServerLadder(t *testing.T) {
	type round struct {
		advance time.Duration
		mutate  func(*fixture)
		outcome model.StepState // state the new steps are put in
		steps   string
		changes string
	}
	refuse := func(f *fixture) { // the last step was refused by the cloud (409)
		inc := &f.in.Open[0]
		st := &inc.Steps[len(inc.Steps)-1]
		st.State, st.Error, st.Finished = model.StepFailed, "conflict", f.in.Now
	}
	unavailable := func(f *fixture) {
		refuse(f)
		inc := &f.in.Open[0]
		inc.Steps[len(inc.Steps)-1].Retryable = true
	}
	cases := []struct {
		name   string
		status string
		rounds []round
	}{
		{"error server: reboot is a hard one (Nova refuses soft outside ACTIVE), then healthy", model.StatusError, []round{
			{0, nil, model.StepIssued, "reboot(hard)", ""},
			{time.Second, func(f *fixture) { f.server("a", "h1", model.StatusActive) }, "", "", "resolved"},
		}},
		{"refused rungs climb the ladder in order; evacuate from a live host escalates instead", model.StatusError, []round{
			{0, nil, model.StepFailed, "reboot(hard)", ""},
			{0, refuse, model.StepFailed, "hard-reboot", ""},
			{0, refuse, model.StepFailed, "rebuild", ""},
			{0, refuse, "", "", "escalated"},
		}},
		{"evacuate rung when the host is down: the host's incident takes it", model.StatusError, []round{
			{0, nil, model.StepFailed, "reboot(hard)", ""},
			{0, refuse, model.StepFailed, "hard-reboot", ""},
			{0, refuse, model.StepFailed, "rebuild", ""},
			{0, func(f *fixture) { refuse(f); f.hostDown("h1") }, "", "fence", "superseded"},
		}},
		{"a rung that times out moves on", model.StatusError, []round{
			{0, nil, model.StepIssued, "reboot(hard)", ""},
			{30 * time.Second, nil, "", "", ""},
			{31 * time.Second, nil, model.StepIssued, "hard-reboot", ""},
		}},
		{"a passing failure retries the same rung after backoff", model.StatusError, []round{
			{0, nil, model.StepFailed, "reboot(hard)", ""},
			{0, unavailable, "", "", ""}, // backoff not elapsed
			{5 * time.Second, nil, model.StepIssued, "reboot(hard)", ""},
		}},
		{"deadline escalates", model.StatusError, []round{
			{0, nil, model.StepIssued, "reboot(hard)", ""},
			{11 * time.Minute, nil, "", "", "escalated"},
		}},
		{"cloud unreachable: no action", model.StatusError, []round{
			{0, func(f *fixture) { f.in.CloudErr = "timeout" }, "", "", ""},
			{time.Second, func(f *fixture) { f.in.CloudErr = "" }, model.StepIssued, "reboot(hard)", ""},
		}},
		{"server deleted outside Vigil escalates with the reason", model.StatusError, []round{
			{0, func(f *fixture) { delete(f.in.Servers, "a") }, "", "", "escalated"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(3)
			f.server("a", "h1", c.status)
			for i, r := range c.rounds {
				f.later(r.advance)
				if r.mutate != nil {
					r.mutate(f)
				}
				out := f.run(r.outcome)
				if got := steps(out); got != r.steps {
					t.Fatalf("round %d: steps %q, want %q (changes %v)", i, got, r.steps, out.Changes)
				}
				if got := changes(out); got != r.changes {
					t.Fatalf("round %d: changes %q, want %q (%v)", i, got, r.changes, out.Changes)
				}
			}
		})
	}
}

func TestOneIncidentPerFailureAndNoneForOwnerStops(t *testing.T) {
	f := newFixture(2)
	f.server("a", "h1", model.StatusError)
	out := f.run(model.StepIssued)
	if len(out.Open) != 1 {
		t.Fatalf("opened %d incidents, want 1", len(out.Open))
	}
	if out := f.run(model.StepIssued); len(out.Open) != 0 || len(out.Steps) != 0 {
		t.Fatalf("second round opened %d / planned %d: one recovery per server at a time", len(out.Open), len(out.Steps))
	}
	// An escalated failure that persists is not reopened.
	g := newFixture(2)
	g.server("a", "h1", model.StatusError)
	g.in.LastClosed[model.Subject{Kind: model.KindServer, ID: "a"}] = model.Incident{State: model.IncidentEscalated, Closed: t0.Add(time.Second)}
	if out := g.run(model.StepIssued); len(out.Open) != 0 {
		t.Fatal("reopened an escalated incident for the same failure")
	}
	// A server its owner stopped has a healthy verdict: nothing to do.
	h := newFixture(2)
	h.in.Servers["a"] = model.Server{ID: "a", Host: "h1", Status: model.StatusShutoff, Intent: model.IntentOff}
	if out := h.run(model.StepIssued); len(out.Open) != 0 {
		t.Fatal("incident for a server its owner stopped")
	}
}

func TestHostFailure(t *testing.T) {
	t.Run("fence, mark down, then evacuate each protected server with placement", func(t *testing.T) {
		f := newFixture(3)
		f.server("b", "h1", model.StatusActive)
		f.in.Clusters[0].Members = []string{"a", "b"}
		f.server("x", "h1", model.StatusActive) // not protected
		f.hostDown("h1")
		out := f.run(model.StepIssued)
		if len(out.Open) != 1 || out.Open[0].Subject.Kind != model.KindHost {
			t.Fatalf("opened %+v, want one host incident (no server incidents)", out.Open)
		}
		if got := steps(out); got != "fence" {
			t.Fatalf("first steps %q, want fence alone", got)
		}
		// Fence issued but not confirmed: nothing else happens.
		f.later(time.Second)
		if out := f.run(model.StepIssued); steps(out) != "" {
			t.Fatalf("steps before the fence is confirmed: %q", steps(out))
		}
		f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
		out = f.run(model.StepIssued)
		if got := steps(out); got != "mark-down" {
			t.Fatalf("after fence: %q, want mark-down", got)
		}
		f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff, ForcedDown: true}
		out = f.run(model.StepIssued)
		if got := steps(out); got != "evacuate→h2,evacuate→h3" {
			t.Fatalf("after mark-down: %q, want both protected servers spread over h2 and h3", got)
		}
		f.later(2 * time.Second)
		f.in.Servers["a"] = model.Server{ID: "a", Host: "h2", Status: model.StatusActive}
		f.in.Servers["b"] = model.Server{ID: "b", Host: "h3", Status: model.StatusActive}
		for _, id := range []string{"a", "b"} {
			f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}] = model.Verdict{Server: "healthy", Since: f.in.Now}
		}
		if out := f.run(model.StepIssued); changes(out) != "resolved" {
			t.Fatalf("after evacuations: %v", out.Changes)
		}
	})
	t.Run("no BMC and the default policy: escalate, never evacuate", func(t *testing.T) {
		f := newFixture(3)
		f.in.CanFence["h1"] = false
		f.hostDown("h1")
		out := f.run(model.StepIssued)
		if steps(out) != "" || changes(out) != "escalated" || !strings.Contains(out.Changes[0].Reason, "no fence proof") {
			t.Fatalf("steps %q changes %+v", steps(out), out.Changes)
		}
	})
	t.Run("no BMC, policy allows service fence only: skip fence, mark down first", func(t *testing.T) {
		f := newFixture(3)
		pol := model.DefaultPolicy()
		pol.ServiceFenceOnly = true
		f.in.Policies["default"] = pol
		f.in.CanFence["h1"] = false
		f.hostDown("h1")
		if got := steps(f.run(model.StepIssued)); got != "fence(skipped),mark-down" {
			t.Fatalf("steps %q", got)
		}
	})
	t.Run("fence that keeps failing escalates without evacuating", func(t *testing.T) {
		f := newFixture(3)
		f.hostDown("h1")
		var all []string
		for range 40 {
			out := f.run(model.StepIssued)
			all = append(all, steps(out))
			if changes(out) == "escalated" {
				break
			}
			f.later(time.Minute)
		}
		if j := strings.Join(all, ","); strings.Contains(j, "evacuate") || strings.Contains(j, "mark-down") {
			t.Fatalf("acted past an unconfirmed fence: %s", j)
		}
		if f.in.Open[0].State != model.IncidentEscalated || !strings.Contains(f.in.Open[0].Reason, "fence") {
			t.Fatalf("incident %s: %s", f.in.Open[0].State, f.in.Open[0].Reason)
		}
	})
	t.Run("brake: most of a segment down at once, nothing fenced", func(t *testing.T) {
		f := newFixture(4)
		for i, h := range []string{"h1", "h2", "h3"} {
			id := fmt.Sprintf("s%d", i)
			f.server(id, h, model.StatusActive)
			f.in.Clusters[0].Members = append(f.in.Clusters[0].Members, id)
		}
		f.hostDown("h1")
		f.hostDown("h2")
		f.hostDown("h3")
		out := f.run(model.StepIssued)
		if steps(out) != "" {
			t.Fatalf("steps under the brake: %q", steps(out))
		}
		if len(f.in.Open) != 3 || f.in.Open[0].State != model.IncidentWaiting || !strings.Contains(f.in.Open[0].Reason, "brake engaged") {
			t.Fatalf("incidents %+v", f.in.Open)
		}
	})
	t.Run("host back before any action: resolved, nothing done", func(t *testing.T) {
		f := newFixture(2)
		f.hostDown("h1")
		f.in.CanFence["h1"] = true
		f.in.Limits.MaxConcurrent = 0 // hold the fence
		f.run(model.StepIssued)
		f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Host: "up"}
		f.in.Limits.MaxConcurrent = 5
		out := f.run(model.StepIssued)
		if steps(out) != "" || changes(out) != "resolved" {
			t.Fatalf("steps %q changes %v", steps(out), out.Changes)
		}
	})
}

func TestConcurrencyLimit(t *testing.T) {
	f := newFixture(2)
	f.in.Limits.MaxConcurrent = 2
	var members []string
	for i := range 5 {
		id := fmt.Sprintf("v%d", i)
		f.server(id, "h2", model.StatusError)
		members = append(members, id)
	}
	f.in.Clusters[0].Members = members
	out := f.run(model.StepIssued)
	if len(out.Steps) != 2 {
		t.Fatalf("planned %d steps with max_concurrent 2", len(out.Steps))
	}
	waiting := 0
	for _, inc := range f.in.Open {
		if inc.State == model.IncidentWaiting && strings.Contains(inc.Reason, "max_concurrent") {
			waiting++
		}
	}
	if waiting != 3 {
		t.Fatalf("%d incidents waiting with a reason, want 3", waiting)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(2)
	c := f.in.Clusters[0]
	if h := Health(c, f.in.Servers, f.in.Verdicts, nil, nil); h.Health != model.Green {
		t.Fatalf("%+v", h)
	}
	f.server("a", "h1", model.StatusError)
	open := []model.Incident{{Subject: model.Subject{Kind: model.KindServer, ID: "a"}}}
	if h := Health(c, f.in.Servers, f.in.Verdicts, open, nil); h.Health != model.Red {
		t.Fatalf("only member failed: %+v, want Red", h)
	}
	c.Members, c.Desired = []string{"a", "b"}, 1
	f.server("b", "h2", model.StatusActive)
	if h := Health(c, f.in.Servers, f.in.Verdicts, open, nil); h.Health != model.Yellow {
		t.Fatalf("one of two recovering: %+v, want Yellow", h)
	}
	closed := map[model.Subject]model.Incident{{Kind: model.KindServer, ID: "a"}: {State: model.IncidentEscalated, Reason: "gave up"}}
	if h := Health(c, f.in.Servers, f.in.Verdicts, nil, closed); h.Health != model.Red || !strings.Contains(h.Reason, "gave up") {
		t.Fatalf("escalated: %+v, want Red with the reason", h)
	}
}
