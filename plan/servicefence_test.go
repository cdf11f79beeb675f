package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// serviceFenceFixture: h1 has no BMC and the policy accepts the service fence alone
// (service_fence_only); h1 is down with protected servers a and b on it.
func serviceFenceFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(3)
	pol := model.DefaultPolicy()
	pol.ServiceFenceOnly = true
	f.in.Policies["default"] = pol
	f.in.CanFence["h1"] = false
	f.server("b", "h1", model.StatusActive)
	f.in.Clusters[0].Members = []string{"a", "b"}
	f.hostDown("h1")
	if got := steps(f.run(model.StepIssued)); got != "fence(skipped),mark-down" {
		t.Fatalf("first round: steps %q, want fence(skipped),mark-down", got)
	}
	return f
}

// forcedDown sets what the cloud shows of h1's compute service: down, and forced
// down or not.
func (f *fixture) forcedDown(forced bool) {
	h := f.in.Hosts["h1"]
	h.Service, h.ForcedDown = model.ServiceDown, forced
	f.in.Hosts["h1"] = h
}

func noEvacuation(t *testing.T, round string, out Output) {
	t.Helper()
	if s := steps(out); strings.Contains(s, "evacuate") {
		t.Fatalf("%s: steps %q: an evacuation under service_fence_only before the cloud shows the service forced down (the host's copies may still run)", round, s)
	}
}

// Under service_fence_only the forced-down service is the only fence: until the
// cloud shows it forced down, nothing is evacuated, however long it takes.
func TestServiceFenceOnlyEvacuatesOnlyOnceTheCloudShowsForcedDown(t *testing.T) {
	f := serviceFenceFixture(t)
	// The mark-down was issued; the cloud reports the service down (its heartbeats
	// stopped) but not yet forced down.
	for i := range 5 {
		f.later(time.Second)
		f.forcedDown(false)
		out := f.run(model.StepIssued)
		noEvacuation(t, "mark-down issued, not confirmed", out)
		if s := steps(out); s != "" {
			t.Fatalf("round %d: steps %q while the mark-down is in flight, want none", i, s)
		}
	}
	// Now the cloud shows it: both servers are evacuated.
	f.later(time.Second)
	f.forcedDown(true)
	if got := steps(f.run(model.StepIssued)); got != "evacuate→h2,evacuate→h3" {
		t.Fatalf("forced down confirmed: steps %q, want both servers evacuated", got)
	}
}

// A mark-down that never shows fails by its deadline and is retried: it never turns
// into an evacuation.
func TestServiceFenceOnlyUnconfirmedMarkDownIsRetriedNotEvacuated(t *testing.T) {
	f := serviceFenceFixture(t)
	var all []string
	for range 20 {
		f.later(30 * time.Second)
		f.forcedDown(false)
		out := f.run(model.StepIssued)
		noEvacuation(t, "mark-down never confirmed", out)
		all = append(all, steps(out))
		if changes(out) == "escalated" {
			break
		}
	}
	if j := strings.Join(all, ","); !strings.Contains(j, "mark-down") {
		t.Fatalf("mark-down never retried after it was not confirmed: %q", j)
	}
}

// The service fence holds only while the service stays forced down: if the flag is
// cleared (an operator, another tool, a restarted compute) after the mark-down was
// confirmed, Vigil marks it down again before evacuating anything more.
func TestServiceFenceOnlyForcedDownClearedAfterConfirmation(t *testing.T) {
	f := serviceFenceFixture(t)
	// Confirmed forced down, but the concurrency cap (the mark-down still counts as in
	// flight this round) holds the evacuations back.
	f.in.Limits.MaxConcurrent = 1
	f.later(time.Second)
	f.forcedDown(true)
	out := f.run(model.StepIssued)
	noEvacuation(t, "held by max_concurrent", out)
	if !succeeded(f.in.Open[0].Steps, model.ActMarkDown, "") {
		t.Fatalf("mark-down not recorded as succeeded: %+v", f.in.Open[0].Steps)
	}
	// The flag is cleared before the next round.
	f.in.Limits.MaxConcurrent = 20
	f.later(time.Second)
	f.forcedDown(false)
	out = f.run(model.StepIssued)
	noEvacuation(t, "forced_down cleared after the mark-down succeeded", out)
	if got := steps(out); got != "mark-down" {
		t.Fatalf("forced_down cleared: steps %q, want the mark-down again", got)
	}
}
