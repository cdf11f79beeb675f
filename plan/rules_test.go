package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Tests for rules of host.go, server.go and plan.go that could be deleted or
// loosened with every suite still passing; each names the rule it pins.

// walkToEvacuation takes a host incident on h1 through a confirmed fence and
// mark-down, returning the output of the round that plans the evacuations.
func (f *fixture) walkToEvacuation(t *testing.T) Output {
	t.Helper()
	f.hostDown("h1")
	if got := steps(f.run(model.StepIssued)); got != "fence" {
		t.Fatalf("steps %q, want fence", got)
	}
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
	if got := steps(f.run(model.StepIssued)); got != "mark-down" {
		t.Fatalf("steps %q, want mark-down", got)
	}
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff, ForcedDown: true}
	return f.run(model.StepIssued)
}

func wantChange(t *testing.T, out Output, state model.IncidentState, reason string) {
	t.Helper()
	for _, c := range out.Changes {
		if c.State == state && strings.Contains(c.Reason, reason) {
			return
		}
	}
	t.Fatalf("changes %+v (steps %q), want %s naming %q", out.Changes, steps(out), state, reason)
}

// hostPolicy: a host's servers may belong to clusters with different policies; the
// strictest of each setting applies.
func TestHostPolicyIsTheStrictestOfItsServers(t *testing.T) {
	setup := func(other model.Policy) *fixture {
		f := newFixture(3)
		other.Name = "other"
		f.in.Policies["other"] = other
		f.server("b", "h1", model.StatusActive)
		f.in.Clusters = append(f.in.Clusters, model.Cluster{Name: "c2", Members: []string{"b"}, Desired: 1, Policy: "other"})
		return f
	}
	t.Run("service_fence_only only if every policy allows it", func(t *testing.T) {
		pol := model.DefaultPolicy()
		pol.ServiceFenceOnly = true
		f := setup(pol)
		f.in.CanFence["h1"] = false
		f.hostDown("h1")
		out := f.run(model.StepIssued)
		if steps(out) != "" {
			t.Fatalf("steps %q: a cluster's policy requires a BMC fence", steps(out))
		}
		wantChange(t, out, model.IncidentEscalated, "no fence proof")
	})
	t.Run("evacuate_on_host_failure only if every policy allows it", func(t *testing.T) {
		pol := model.DefaultPolicy()
		pol.EvacuateOnHostFailure = false
		f := setup(pol)
		out := f.walkToEvacuation(t)
		if strings.Contains(steps(out), "evacuate") {
			t.Fatalf("steps %q: a cluster's policy forbids evacuating on host failure", steps(out))
		}
		wantChange(t, out, model.IncidentEscalated, "does not evacuate on host failure")
	})
	t.Run("the shortest deadline", func(t *testing.T) {
		pol := model.DefaultPolicy()
		pol.Deadline = time.Minute
		f := setup(pol)
		f.in.Limits.MaxConcurrent = 0 // nothing can be taken: the recovery waits
		f.hostDown("h1")
		f.run(model.StepIssued)
		f.later(2 * time.Minute)
		wantChange(t, f.run(model.StepIssued), model.IncidentEscalated, "deadline 1m0s")
	})
}

// "An outage proves nothing": while the cloud cannot be seen, no step in flight is
// judged failed by its deadline and no new step is taken.
func TestCloudOutageProvesNothing(t *testing.T) {
	// inFlight: a step in flight waits quietly for its outcome; otherwise the incident
	// says it waits for the cloud.
	outage := func(t *testing.T, f *fixture, inFlight bool) {
		t.Helper()
		f.in.CloudErr = "compute API timeout"
		f.later(2 * time.Minute) // past every step's deadline
		out := f.run(model.StepIssued)
		if steps(out) != "" || len(out.Updates) != 0 {
			t.Fatalf("during the outage: steps %q, updates %+v: want none", steps(out), out.Updates)
		}
		if !inFlight {
			wantChange(t, out, model.IncidentWaiting, "cannot be seen")
		}
	}
	t.Run("host incident, fence in flight", func(t *testing.T) {
		f := newFixture(3)
		f.hostDown("h1")
		f.run(model.StepIssued)
		outage(t, f, false)
	})
	t.Run("host incident, fence confirmed", func(t *testing.T) {
		f := newFixture(3)
		f.hostDown("h1")
		f.run(model.StepIssued)
		f.later(time.Second)
		f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
		f.in.Limits.MaxConcurrent = 1 // the confirmation counts as in flight: mark-down waits
		f.run(model.StepIssued)
		f.in.Limits.MaxConcurrent = 20
		outage(t, f, false)
	})
	t.Run("server incident, reboot in flight", func(t *testing.T) {
		f := newFixture(3)
		f.server("a", "h1", model.StatusError)
		f.run(model.StepIssued)
		outage(t, f, true)
	})
	t.Run("server incident, reboot refused", func(t *testing.T) {
		f := newFixture(3)
		f.server("a", "h1", model.StatusError)
		f.run(model.StepFailed)
		f.in.Open[0].Steps[0].Finished = f.in.Now
		outage(t, f, false)
	})
}

// A host powered on again after its fence, before its servers were moved, may be
// alive: it is neither fenced again nor evacuated from; the incident escalates.
func TestHostPoweredOnAgainAfterItsFenceEscalates(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	f.run(model.StepIssued)
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOff}
	f.run(model.StepIssued) // fence confirmed, mark-down issued
	f.later(time.Second)
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceDown, Power: model.PowerOn}
	out := f.run(model.StepIssued)
	if steps(out) != "" {
		t.Fatalf("steps %q after the host was powered on again: want none", steps(out))
	}
	wantChange(t, out, model.IncidentEscalated, "powered on again")
}

// place: never a forced-down host as an evacuation target, however much room it has.
func TestEvacuationTargetIsNotForcedDown(t *testing.T) {
	f := newFixture(3)
	f.in.Hosts["h2"] = model.Host{Name: "h2", Segment: "s", Service: model.ServiceUp, ForcedDown: true, Capacity: 50}
	if got := steps(f.walkToEvacuation(t)); got != "evacuate→h3" {
		t.Fatalf("steps %q, want evacuate→h3 (h2 is forced down)", got)
	}
}

// max_attempts caps the actions of one incident, server and host alike.
func TestMaxAttemptsEscalates(t *testing.T) {
	pol := model.DefaultPolicy()
	pol.MaxAttempts = 2
	t.Run("server", func(t *testing.T) {
		f := newFixture(3)
		f.in.Policies["default"] = pol
		f.server("a", "h1", model.StatusError)
		if got := steps(f.run(model.StepFailed)); got != "reboot(hard)" {
			t.Fatalf("round 0: %q", got)
		}
		if got := steps(f.run(model.StepFailed)); got != "hard-reboot" {
			t.Fatalf("round 1: %q", got)
		}
		out := f.run(model.StepFailed)
		if steps(out) != "" {
			t.Fatalf("steps %q after 2 attempts with max_attempts 2", steps(out))
		}
		wantChange(t, out, model.IncidentEscalated, "max_attempts")
	})
	t.Run("host fence", func(t *testing.T) {
		f := newFixture(3)
		f.in.Policies["default"] = pol
		f.hostDown("h1")
		fences := 0
		var out Output
		for range 6 {
			out = f.run(model.StepIssued)
			fences += strings.Count(steps(out), "fence")
			if changes(out) == "escalated" {
				break
			}
			f.later(time.Minute) // each fence times out unconfirmed
		}
		if fences != 2 {
			t.Fatalf("%d fences taken with max_attempts 2", fences)
		}
		wantChange(t, out, model.IncidentEscalated, "after 2 attempts")
	})
}

// A retry waits out its backoff: a fence that failed for a passing reason is not
// retried at once.
func TestHostStepRetryWaitsForBackoff(t *testing.T) {
	f := newFixture(3)
	f.hostDown("h1")
	f.run(model.StepFailed)
	f.in.Open[0].Steps[0].Retryable, f.in.Open[0].Steps[0].Finished = true, f.in.Now
	f.later(time.Second)
	if got := steps(f.run(model.StepIssued)); got != "" {
		t.Fatalf("retry 1 s after a failure: %q, want none before the backoff", got)
	}
	f.later(5 * time.Second)
	if got := steps(f.run(model.StepIssued)); got != "fence" {
		t.Fatalf("after the backoff: %q, want the fence again", got)
	}
}

// activeSince: an evacuation succeeds only on an observation made after it was
// issued; a healthy verdict from before is the server's old state.
func TestEvacuationIsConfirmedOnlyByALaterObservation(t *testing.T) {
	f := newFixture(3)
	if got := steps(f.walkToEvacuation(t)); got != "evacuate→h2" {
		t.Fatalf("steps %q", got)
	}
	issued := f.in.Now
	f.later(time.Second)
	f.in.Servers["a"] = model.Server{ID: "a", Host: "h2", Status: model.StatusActive}
	a := model.Subject{Kind: model.KindServer, ID: "a"}
	f.in.Verdicts[a] = model.Verdict{Subject: a, Server: string(model.ServerHealthy), Since: issued.Add(-time.Second)}
	if out := f.run(model.StepIssued); len(out.Updates) != 0 || changes(out) != "" {
		t.Fatalf("stale verdict: updates %+v changes %v, want the evacuation still in flight", out.Updates, out.Changes)
	}
	f.in.Verdicts[a] = model.Verdict{Subject: a, Server: string(model.ServerHealthy), Since: f.in.Now}
	wantChange(t, f.run(model.StepIssued), model.IncidentResolved, "ACTIVE on other hosts")
}

// One recovery per server at a time: no server incident for a server whose host
// failed, or that another incident has a step in flight on; and a host incident
// does not evacuate a server another incident's step holds.
func TestOneRecoveryPerServer(t *testing.T) {
	t.Run("server on a failed host whose incident was escalated", func(t *testing.T) {
		f := newFixture(3)
		f.hostDown("h1")
		h1 := model.Subject{Kind: model.KindHost, ID: "h1"}
		f.in.LastClosed[h1] = model.Incident{Subject: h1, State: model.IncidentEscalated, Closed: f.in.Now.Add(time.Second)}
		a := model.Subject{Kind: model.KindServer, ID: "a"}
		f.in.Verdicts[a] = model.Verdict{Subject: a, Server: "failed", Failed: true, Rule: "server-error", Since: f.in.Now}
		if out := f.run(model.StepIssued); len(out.Open) != 0 {
			t.Fatalf("opened %+v for a server on a failed host", out.Open)
		}
	})
	t.Run("server with another incident's evacuation in flight", func(t *testing.T) {
		f := newFixture(3)
		f.walkToEvacuation(t) // a's evacuation to h2 is in flight
		f.later(time.Second)
		f.server("a", "h2", model.StatusError)
		if out := f.run(model.StepIssued); len(out.Open) != 0 {
			t.Fatalf("opened %+v while the host incident's evacuation of a is in flight", out.Open)
		}
	})
	t.Run("host incident leaves a server another incident holds", func(t *testing.T) {
		f := newFixture(3)
		f.server("b", "h1", model.StatusActive)
		f.in.Clusters[0].Members = []string{"a", "b"}
		a := model.Subject{Kind: model.KindServer, ID: "a"}
		f.in.Open = []model.Incident{{ID: 7, Subject: a, Cluster: "c", Policy: "default", State: model.IncidentOpen, Opened: t0,
			Steps: []model.Step{{ID: 701, Incident: 7, Seq: 1, Action: model.ActReboot, Server: "a", Host: "h1", State: model.StepIntent, Rule: "r", Planned: t0}}}}
		if got := steps(f.walkToEvacuation(t)); got != "evacuate→h2" {
			t.Fatalf("steps %q: want b alone evacuated while a's reboot intent is unresolved", got)
		}
	})
}

// A failed host with no protected server on it is not Vigil's to recover.
func TestNoIncidentForAHostWithoutProtectedServers(t *testing.T) {
	f := newFixture(3)
	f.server("x", "h2", model.StatusActive) // not in any cluster
	f.hostDown("h2")
	if out := f.run(model.StepIssued); len(out.Open) != 0 || len(out.Steps) != 0 {
		t.Fatalf("opened %+v, steps %q for a host with no protected server", out.Open, steps(out))
	}
}

// A server is not acted on while its host is in doubt, nor while a task runs on it.
func TestServerWaitsForItsHostAndForTasks(t *testing.T) {
	t.Run("host suspect", func(t *testing.T) {
		f := newFixture(3)
		f.server("a", "h1", model.StatusError)
		h1 := model.Subject{Kind: model.KindHost, ID: "h1"}
		f.in.Verdicts[h1] = model.Verdict{Subject: h1, Host: string(model.HostSuspect), Since: t0}
		out := f.run(model.StepIssued)
		if steps(out) != "" {
			t.Fatalf("steps %q on a server whose host is suspect", steps(out))
		}
		wantChange(t, out, model.IncidentWaiting, "its host h1 is suspect")
	})
	t.Run("task running", func(t *testing.T) {
		f := newFixture(3)
		f.server("a", "h1", model.StatusError)
		f.run(model.StepFailed) // the reboot was refused
		a := model.Subject{Kind: model.KindServer, ID: "a"}
		f.in.Servers["a"] = model.Server{ID: "a", Host: "h1", Status: model.StatusError, TaskState: "rebooting_hard"}
		f.in.Verdicts[a] = model.Verdict{Subject: a, Server: string(model.ServerRecovering), Rule: "server-busy", Since: f.in.Now}
		f.later(time.Minute)
		if got := steps(f.run(model.StepIssued)); got != "" {
			t.Fatalf("steps %q while a task runs on the server", got)
		}
	})
	t.Run("action log unread", func(t *testing.T) {
		// An open incident (its first reboot failed), then Vigil restarts: the server
		// is in ERROR again and its action log is not read yet (a move Vigil did not
		// watch may have put its copy elsewhere): no next rung until it is.
		f := newFixture(3)
		f.server("a", "h1", model.StatusError)
		f.run(model.StepFailed)
		a := model.Subject{Kind: model.KindServer, ID: "a"}
		f.in.Verdicts[a] = model.Verdict{Subject: a, Server: string(model.ServerUnknown), Rule: model.RuleServerHistoryUnread, Since: f.in.Now}
		f.later(time.Minute)
		if got := steps(f.run(model.StepIssued)); got != "" {
			t.Fatalf("steps %q before the server's action log was read", got)
		}
	})
}

// Seed 764: Vigil restarts with a host incident and a server incident on one of
// its servers both open; the host is up again, so the host incident resolves in
// this round. The server incident must not be superseded by it (nothing would
// recover the server: its failure counts as answered); it goes on with its ladder.
func TestServerIncidentNotSupersededByAHostIncidentClosingNow(t *testing.T) {
	f := newFixture(3)
	f.server("a", "h1", model.StatusError)
	f.in.Open = []model.Incident{
		{ID: 1, Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, State: model.IncidentOpen, Policy: "default", Opened: t0},
		{ID: 2, Subject: model.Subject{Kind: model.KindServer, ID: "a"}, State: model.IncidentOpen, Policy: "default", Cluster: "c", Opened: t0},
	}
	out := f.run(model.StepIssued)
	for _, c := range out.Changes {
		if c.Incident == 2 && c.State.Closed() {
			t.Fatalf("server incident closed (%s: %s) by a host incident that closes in the same round", c.State, c.Reason)
		}
	}
	if got := steps(out); got != "reboot(hard)" {
		t.Fatalf("steps %q, want reboot(hard)", got)
	}
}
