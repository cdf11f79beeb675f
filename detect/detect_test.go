package detect

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func srv(id, status string, intent model.PowerIntent) model.Server {
	return model.Server{ID: id, Name: id, Host: "h1", Status: status, Intent: intent}
}

func up(name string) model.Host { return model.Host{Name: name, Service: model.ServiceUp} }

func TestServerRules(t *testing.T) {
	cases := []struct {
		name   string
		server model.Server
		failed bool
		health model.ServerHealth
		rule   string
	}{
		{"active", srv("a", model.StatusActive, model.IntentOn), false, model.ServerHealthy, RuleServerActive},
		{"error", srv("a", model.StatusError, model.IntentOn), true, model.ServerFailed, RuleServerError},
		{"shutoff behind the owner's back", srv("a", model.StatusShutoff, model.IntentOn), true, model.ServerFailed, RuleServerStopped},
		{"shutoff, intent unknown", srv("a", model.StatusShutoff, model.IntentUnknown), true, model.ServerFailed, RuleServerStopped},
		{"paused unexpectedly", srv("a", model.StatusPaused, model.IntentOn), true, model.ServerFailed, RuleServerStopped},
		{"stopped by its owner", srv("a", model.StatusShutoff, model.IntentOff), false, model.ServerHealthy, RuleStoppedByOwner},
		{"rebooting", srv("a", model.StatusReboot, model.IntentOn), false, model.ServerRecovering, RuleServerBusy},
		{"active with a task", model.Server{ID: "a", Host: "h1", Status: model.StatusActive, TaskState: "migrating"}, false, model.ServerRecovering, RuleServerBusy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(Config{HostDownGrace: 10 * time.Second})
			d.Protect([]string{"a"})
			d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{c.server},
				Actions: map[string][]model.InstanceAction{"a": {{Action: "create", Start: t0.Add(-time.Hour)}}}})
			v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
			if v.Failed != c.failed || v.Server != string(c.health) || v.Rule != c.rule {
				t.Fatalf("verdict %+v, want failed=%v health=%s rule=%s", v, c.failed, c.health, c.rule)
			}
			if len(v.Evidence) == 0 {
				t.Fatal("verdict without evidence")
			}
		})
	}
}

func TestMissingServer(t *testing.T) {
	d := New(Config{})
	d.Protect([]string{"a", "b"})
	// A partial observation proves nothing about absence.
	d.Step(t0, model.Observation{At: t0, Hosts: []model.Host{up("h1")}, Servers: []model.Server{srv("a", model.StatusActive, "")}})
	if _, ok := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "b"}]; ok {
		t.Fatal("verdict on b before any full listing")
	}
	ch := d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Full: true, Hosts: []model.Host{up("h1")},
		Servers: []model.Server{srv("a", model.StatusActive, "")}})
	v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "b"}]
	if !v.Failed || v.Rule != RuleServerMissing {
		t.Fatalf("b: %+v, want failed missing", v)
	}
	// (The partial observation before it came before any full listing: ignored, so
	// a is judged here too, healthy.)
	for _, v := range ch {
		if v.Subject.ID != "b" && (v.Failed || v.Subject.ID != "a") {
			t.Fatalf("changed verdicts = %v, want b failed and a healthy", ch)
		}
	}
	if len(ch) != 2 {
		t.Fatalf("changed verdicts = %v, want b failed and a healthy", ch)
	}
	// Deleted in a changes-since listing: also missing.
	d.Step(t0.Add(2*time.Second), model.Observation{At: t0.Add(2 * time.Second), Servers: []model.Server{{ID: "a", Status: model.StatusDeleted}}})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; v.Rule != RuleServerMissing {
		t.Fatalf("deleted a: %+v, want missing", v)
	}
}

func TestHostGrace(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second})
	down := model.Host{Name: "h1", Service: model.ServiceDown}
	step := func(at time.Duration, h model.Host) model.Verdict {
		d.Step(t0.Add(at), model.Observation{At: t0.Add(at), Hosts: []model.Host{h}})
		return d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}]
	}
	if v := step(0, up("h1")); v.Failed || v.Host != string(model.HostUp) {
		t.Fatalf("up: %+v", v)
	}
	if v := step(time.Second, down); v.Failed || v.Host != string(model.HostSuspect) {
		t.Fatalf("just down: %+v, want suspect, not failed", v)
	}
	if v := step(10*time.Second, down); v.Failed {
		t.Fatalf("down 9s of a 10s grace: %+v, want not failed", v)
	}
	v := step(11*time.Second, down)
	if !v.Failed || v.Host != string(model.HostDown) || !v.Since.Equal(t0.Add(time.Second)) {
		t.Fatalf("down 10s: %+v, want down since t0+1s", v)
	}
	if v := step(12*time.Second, up("h1")); v.Failed {
		t.Fatalf("back up: %+v", v)
	}
	// Down again: the grace starts over.
	if v := step(13*time.Second, down); v.Failed {
		t.Fatalf("down again: %+v, grace must restart", v)
	}
	// A forced-down flag alone is not a death (issue 13, hole 2): it gets the grace.
	if v := step(14*time.Second, model.Host{Name: "h1", Service: model.ServiceDown, ForcedDown: true}); v.Failed {
		t.Fatalf("forced down, never silent for long: %+v, want not failed", v)
	}
}

func TestMaintenanceAndServerOnDeadHost(t *testing.T) {
	d := New(Config{HostDownGrace: 0})
	d.Protect([]string{"a"})
	obs := model.Observation{At: t0, Full: true, Hosts: []model.Host{{Name: "h1", Service: model.ServiceDown}},
		Servers: []model.Server{srv("a", model.StatusActive, model.IntentOn)}}
	d.Step(t0, obs)
	if v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; !v.Failed || v.Rule != RuleServerHostDown {
		t.Fatalf("server on a dead host: %+v", v)
	}
	d.SetMaintenance("h1", true)
	d.Step(t0.Add(time.Second), obs)
	if v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}]; v.Failed || v.Host != string(model.HostMaintenance) {
		t.Fatalf("host in maintenance: %+v", v)
	}
}

func TestCloudErrorConcludesNothing(t *testing.T) {
	d := New(Config{HostDownGrace: 0})
	d.Protect([]string{"a"})
	d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{srv("a", model.StatusActive, "")}})
	if ch := d.Step(t0.Add(time.Minute), model.Observation{At: t0.Add(time.Minute), Err: "connection refused"}); ch != nil {
		t.Fatalf("verdicts from a failed observation: %v", ch)
	}
	v := d.View()
	if v.CloudErr == "" || !v.CloudErrSince.Equal(t0.Add(time.Minute)) {
		t.Fatalf("cloud error not recorded: %+v", v)
	}
	if s := v.Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; s.Failed {
		t.Fatalf("server failed during a cloud outage: %+v", s)
	}
}

// A notification during a compute API outage is folded in, but only a poll that
// lists the cloud again says the cloud can be seen (found on the Nova peer: a
// notification during a stopped nova-api made Vigil report the cloud reachable).
func TestNotificationDoesNotEndACloudOutage(t *testing.T) {
	d := New(Config{})
	d.Protect([]string{"a"})
	d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{srv("a", model.StatusActive, "")}})
	d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Err: "connection refused"})
	d.Step(t0.Add(2*time.Second), model.Observation{At: t0.Add(2 * time.Second), Source: "notification",
		Servers: []model.Server{srv("a", model.StatusError, "")}})
	v := d.View()
	if v.CloudErr == "" || !v.CloudErrSince.Equal(t0.Add(time.Second)) {
		t.Fatalf("a notification ended the outage: %+v", v)
	}
	if s := v.Servers["a"]; s.Status != model.StatusError {
		t.Fatalf("the notification was not folded in: %+v", s)
	}
	d.Step(t0.Add(3*time.Second), model.Observation{At: t0.Add(3 * time.Second), Hosts: []model.Host{up("h1")}})
	if v.CloudErr != "" {
		t.Fatalf("a poll that lists the cloud did not end the outage: %q", v.CloudErr)
	}
}

func TestNotificationKeepsWhatItDoesNotCarry(t *testing.T) {
	d := New(Config{})
	d.Protect([]string{"a"})
	d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{up("h1")},
		Servers: []model.Server{srv("a", model.StatusShutoff, model.IntentOff)}})
	// A later instance.update says SHUTOFF but nothing of the intent.
	d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Source: "notification",
		Servers: []model.Server{{ID: "a", Status: model.StatusShutoff}}})
	v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
	if v.Failed || v.Rule != RuleStoppedByOwner {
		t.Fatalf("owner-stopped server after a notification without intent: %+v", v)
	}
	if s := d.View().Servers["a"]; s.Host != "h1" || s.Intent != model.IntentOff {
		t.Fatalf("merged server %+v", s)
	}
}

// Seed 1570: right after a restart, a notification (here eight minutes late) comes
// before Vigil's first listing: nothing to compare it with, so it is not acted on;
// the listing decides.
func TestNotificationBeforeTheFirstListingIsNotJudged(t *testing.T) {
	d := New(Config{})
	d.Protect([]string{"a"})
	d.Step(t0, model.Observation{At: t0, Source: "notification",
		Servers: []model.Server{{ID: "a", Host: "h1", Status: model.StatusError, Updated: t0.Add(-8 * time.Minute)}}})
	if v, ok := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; ok && v.Failed {
		t.Fatalf("a notification before any listing failed a server: %+v", v)
	}
	ok := srv("a", model.StatusActive, model.IntentOn)
	ok.Updated = t0.Add(-time.Minute)
	d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{ok}})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; v.Failed {
		t.Fatalf("after the first listing: %+v", v)
	}
}
