package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// hostAt lists one host whose compute last reported at beat (the cloud's clock),
// observed at t with the cloud's clock at cloud.
func hostStep(d *Detector, t, cloud time.Time, h model.Host) model.Verdict {
	d.Step(t, model.Observation{At: t, CloudAt: cloud, Hosts: []model.Host{h}})
	return d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: h.Name}]
}

// Hole 2: a host an operator forces down while it is healthy and reporting is alive
// (its heartbeats still advance, compared on the cloud's clock); a forced-down host
// whose heartbeats stopped is dead only past service_down_time and its grace. The
// cloud's clock is 7 s behind Vigil's here: nothing compares the two.
func TestForcedDownHostThatReportsIsAlive(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second, ServiceDownTime: 20 * time.Second})
	skew := -7 * time.Second
	at := func(s int) (time.Time, time.Time) {
		v := t0.Add(time.Duration(s) * time.Second)
		return v, v.Add(skew)
	}
	h := model.Host{Name: "h1", Service: model.ServiceUp}
	// Reporting every 5 s, up.
	for s := 0; s <= 10; s += 2 {
		v, c := at(s)
		h.LastSeenUp = c.Truncate(5 * time.Second)
		if got := hostStep(d, v, c, h); got.Failed || got.Host != string(model.HostUp) {
			t.Fatalf("t=%ds healthy host: %+v", s, got)
		}
	}
	// The operator forces it down; Nova bumps updated_at with the change, and the
	// compute keeps reporting every 5 s for two minutes.
	for s := 12; s <= 130; s += 2 {
		v, c := at(s)
		h.Service, h.ForcedDown = model.ServiceDown, true
		h.LastSeenUp = c.Truncate(5 * time.Second)
		if s == 12 {
			h.LastSeenUp = c // the bump of the force-down itself
		}
		got := hostStep(d, v, c, h)
		if got.Failed {
			t.Fatalf("t=%ds forced down while reporting: %+v, want never failed", s, got)
		}
		if s > 20 && (got.Rule != RuleHostForcedReporting || !strings.Contains(strings.Join(got.Evidence, "; "), "not by Vigil")) {
			t.Fatalf("t=%ds forced down while reporting: %+v, want %s with the evidence naming who forced it", s, got, RuleHostForcedReporting)
		}
	}
	// Now it dies: heartbeats stop at t=130. Dead once silent past service_down_time
	// (20 s) and the grace (10 s): from t≈160.
	var died time.Duration
	for s := 132; s <= 200; s += 2 {
		v, c := at(s)
		if got := hostStep(d, v, c, h); got.Failed && died == 0 {
			died = time.Duration(s) * time.Second
			if got.Rule != RuleHostForcedSilent {
				t.Fatalf("dead forced-down host: rule %s, want %s", got.Rule, RuleHostForcedSilent)
			}
		}
	}
	if died < 155*time.Second || died > 165*time.Second {
		t.Fatalf("silent forced-down host judged dead at t=%s, want about 160 s (last heartbeat 130 s + 20 s + 10 s)", died)
	}
}

// Hole 2, Vigil's own force-down: after fencing a dead host, Vigil forces its service
// down (Nova bumps updated_at): the host must stay dead, not come back on the bump.
func TestOwnForceDownOfADeadHostIsNoHeartbeat(t *testing.T) {
	d := New(Config{HostDownGrace: 5 * time.Second, ServiceDownTime: 60 * time.Second})
	d.SetForcedByVigil(map[string]time.Time{"h1": t0})
	h := model.Host{Name: "h1", Service: model.ServiceUp, LastSeenUp: t0}
	hostStep(d, t0, t0, h)
	h.Service = model.ServiceDown // Nova says down 20 s after the last report
	for s := 20; s <= 26; s += 2 {
		hostStep(d, t0.Add(time.Duration(s)*time.Second), t0.Add(time.Duration(s)*time.Second), h)
	}
	v := hostStep(d, t0.Add(28*time.Second), t0.Add(28*time.Second), h)
	if !v.Failed {
		t.Fatalf("dead host before the force-down: %+v", v)
	}
	h.ForcedDown, h.LastSeenUp = true, t0.Add(29*time.Second) // the force-down's bump
	for s := 30; s <= 120; s += 2 {
		if v := hostStep(d, t0.Add(time.Duration(s)*time.Second), t0.Add(time.Duration(s)*time.Second), h); !v.Failed {
			t.Fatalf("t=%ds after Vigil's own force-down: %+v, want still dead", s, v)
		}
	}
}

// Hole 2 after a restart: a repaired host still forced down (by Vigil, long ago)
// that reports again is alive for a new detector too.
func TestRestartedDetectorSeesARepairedForcedDownHostAlive(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second, ServiceDownTime: 20 * time.Second})
	h := model.Host{Name: "h1", Service: model.ServiceDown, ForcedDown: true}
	for s := 0; s <= 120; s += 2 {
		c := t0.Add(time.Duration(s) * time.Second)
		h.LastSeenUp = c.Truncate(5 * time.Second)
		if v := hostStep(d, c, c, h); v.Failed {
			t.Fatalf("t=%ds: repaired host still forced down, reporting: %+v", s, v)
		}
	}
}

// Hole 6: a host's grace is the one of the policies of the servers on it.
func TestHostGraceIsPerHost(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second})
	d.SetGrace(map[string]time.Duration{"slow": 5 * time.Minute})
	down := []model.Host{{Name: "slow", Service: model.ServiceDown}, {Name: "fast", Service: model.ServiceDown}}
	d.Step(t0, model.Observation{At: t0, Hosts: down})
	d.Step(t0.Add(time.Minute), model.Observation{At: t0.Add(time.Minute), Hosts: down})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "fast"}]; !v.Failed {
		t.Fatalf("host with the default 10 s grace, down 1 min: %+v", v)
	}
	if v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "slow"}]; v.Failed {
		t.Fatalf("host whose policy's grace is 5 min, down 1 min: %+v, want not failed", v)
	}
	d.Step(t0.Add(5*time.Minute), model.Observation{At: t0.Add(5 * time.Minute), Hosts: down})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "slow"}]; !v.Failed {
		t.Fatalf("host down 5 min of a 5 min grace: %+v", v)
	}
}

// Hole 9: a notification older than what a listing showed (by the cloud's
// updated_at) does not undo it.
func TestStaleNotificationDoesNotOverrideNewerState(t *testing.T) {
	d := New(Config{})
	d.Protect([]string{"a"})
	fresh := srv("a", model.StatusActive, model.IntentOn)
	fresh.Updated = t0
	d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{fresh}})
	old := model.Server{ID: "a", Status: model.StatusError, Updated: t0.Add(-time.Hour)}
	d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Source: "notification", Servers: []model.Server{old}})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; v.Failed {
		t.Fatalf("an hour-old ERROR notification failed a healthy server: %+v", v)
	}
	// A newer one does count.
	newer := model.Server{ID: "a", Status: model.StatusError, Updated: t0.Add(time.Second)}
	d.Step(t0.Add(2*time.Second), model.Observation{At: t0.Add(2 * time.Second), Source: "notification", Servers: []model.Server{newer}})
	d.Step(t0.Add(3*time.Second), model.Observation{At: t0.Add(3 * time.Second), Source: "poll",
		Actions: map[string][]model.InstanceAction{"a": {{Action: "create", Start: t0.Add(-2 * time.Hour)}}}})
	if v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]; !v.Failed {
		t.Fatalf("a newer ERROR notification: %+v, want failed", v)
	}
}

// Hole 3: a BMC that says off while its host reports, two hosts whose entries reach
// one BMC, and a BMC whose identity changed are not trusted.
func TestFenceDoubts(t *testing.T) {
	d := New(Config{ServiceDownTime: 20 * time.Second})
	hosts := []model.Host{up("h1"), up("h2"), up("h3"), up("h4")}
	for s := 0; s <= 10; s += 2 {
		c := t0.Add(time.Duration(s) * time.Second)
		for i := range hosts {
			hosts[i].LastSeenUp = c
		}
		obs := model.Observation{At: c, CloudAt: c, Hosts: hosts,
			Power:    map[string]model.Power{"h1": model.PowerOff, "h2": model.PowerOn, "h3": model.PowerOn, "h4": model.PowerOn},
			Identity: map[string]string{"h1": "g1", "h2": "g3", "h3": "g3", "h4": "g4"}}
		if s == 10 {
			obs.Identity["h4"] = "g9"
		}
		d.Step(c, obs)
	}
	doubt := d.View().FenceDoubt
	for h, want := range map[string]string{"h1": "says power off while its compute service goes on reporting", "h2": "reach one BMC",
		"h3": "reach one BMC", "h4": "now identifies as g9"} {
		if !strings.Contains(doubt[h], want) {
			t.Errorf("doubt on %s = %q, want it to say %q", h, doubt[h], want)
		}
	}
	if len(doubt) != 4 {
		t.Errorf("doubts %v, want exactly h1..h4", doubt)
	}
	// A BMC that says off for a host that is really down is no doubt.
	d2 := New(Config{ServiceDownTime: 20 * time.Second})
	d2.Step(t0, model.Observation{At: t0, CloudAt: t0, Hosts: []model.Host{{Name: "h1", Service: model.ServiceDown, LastSeenUp: t0.Add(-time.Minute)}},
		Power: map[string]model.Power{"h1": model.PowerOff}})
	if len(d2.View().FenceDoubt) != 0 {
		t.Fatalf("doubt on a BMC that says off for a down host: %v", d2.View().FenceDoubt)
	}
}

// Seeds 114, 283, 400, 422, 488: a server seen live-migrating when its source host
// died comes back in ERROR on the source, its copy running on the destination. A
// Vigil restarted meanwhile has no memory of the migration: it must not call the
// server failed in place (and reboot it there: a second copy) before it has read
// the cloud's action log, and a move there not followed by a sighting of the server
// running is a migration interrupted.
func TestRestartedDetectorReadsHistoryBeforeRecoveringInPlace(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	failed := srv("a", model.StatusError, model.IntentOn)
	failed.Updated = at(100)
	obs := func(s int, acts map[string][]model.InstanceAction) model.Observation {
		return model.Observation{At: at(s), Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{failed}, Actions: acts}
	}
	verdict := func(d *Detector) model.Verdict {
		return d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "a"}]
	}
	migrated := map[string][]model.InstanceAction{"a": {{Action: "create", Start: at(-3600)}, {Action: "live-migration", Start: at(10)}}}

	d := New(Config{}) // just restarted: never saw "a" migrating
	d.Protect([]string{"a"})
	if got := d.NeedHistory([]model.Server{failed}); len(got) != 1 || got[0] != "a" {
		t.Fatalf("NeedHistory = %v, want [a]", got)
	}
	d.Step(at(200), obs(200, nil))
	if v := verdict(d); v.Failed || v.Rule != RuleServerHistoryUnread {
		t.Fatalf("ERROR seen by a restarted Vigil, action log unread: %+v, want not failed, %s", v, RuleServerHistoryUnread)
	}
	d.Step(at(202), obs(202, migrated))
	if v := verdict(d); !v.Failed || v.Rule != RuleServerMigration {
		t.Fatalf("ERROR after a live migration Vigil did not see end: %+v, want %s", v, RuleServerMigration)
	}
	if got := d.NeedHistory(nil); len(got) != 0 {
		t.Fatalf("NeedHistory after the log was read = %v, want none", got)
	}

	// A migration that Vigil saw end (the server ACTIVE and idle after it) is over: a
	// later crash is recovered in place, as usual.
	d = New(Config{})
	d.Protect([]string{"a"})
	ok := srv("a", model.StatusActive, model.IntentOn)
	ok.Updated = at(20)
	d.Step(at(30), model.Observation{At: at(30), Full: true, Hosts: []model.Host{up("h1")}, Servers: []model.Server{ok}})
	d.Step(at(200), obs(200, migrated))
	if v := verdict(d); !v.Failed || v.Rule != RuleServerError {
		t.Fatalf("crash after a migration seen to end: %+v, want %s", v, RuleServerError)
	}
	// And a server whose log holds no move fails in place at once when it is read.
	d = New(Config{})
	d.Protect([]string{"a"})
	d.Step(at(200), obs(200, map[string][]model.InstanceAction{"a": {{Action: "create", Start: at(-3600)}, {Action: "reboot", Start: at(50)}}}))
	if v := verdict(d); !v.Failed || v.Rule != RuleServerError {
		t.Fatalf("crash, no move in the log: %+v, want %s", v, RuleServerError)
	}
}

// Seed 456: Vigil forced a fenced host's service down, then was down for minutes; an
// operator powered the host on meanwhile (its BMC, lying, still says off). The first
// listing after the restart shows updated_at written minutes after Vigil's own
// force-down: that is the compute reporting, not the bump of Vigil's change, and
// the host is alive at once (not suspect, which let the evacuations go on). The
// clocks differ by 30 s here: Vigil's time is mapped onto the cloud's.
func TestRestartedDetectorTellsAHeartbeatFromItsOwnForceDown(t *testing.T) {
	skew := 30 * time.Second // the cloud's clock ahead of Vigil's
	forced := t0             // Vigil's clock: its mark-down step
	for _, c := range []struct {
		name      string
		updated   time.Duration // updated_at, after the force-down, on the cloud's clock
		wantAlive bool
	}{
		{"heartbeat minutes after the force-down", 8 * time.Minute, true},
		{"the force-down's own bump", 2 * time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := New(Config{HostDownGrace: 10 * time.Second, ServiceDownTime: time.Minute})
			d.SetForcedByVigil(map[string]time.Time{"h1": forced})
			now := forced.Add(c.updated).Add(time.Second) // the first listing after the restart
			h := model.Host{Name: "h1", Service: model.ServiceDown, ForcedDown: true, Power: model.PowerOff,
				LastSeenUp: forced.Add(skew).Add(c.updated)}
			v := hostStep(d, now, now.Add(skew), h)
			if alive := v.Host == string(model.HostUp); alive != c.wantAlive {
				t.Fatalf("first listing after a restart, updated_at %s after Vigil's force-down: %+v, want alive=%v", c.updated, v, c.wantAlive)
			}
		})
	}
}

// Seed 450: a server whose live migration was interrupted (its copy may run on the
// destination) stays so when its source host fails later: its host's failure must
// not turn it into one more server to evacuate from there.
func TestMigrationInterruptedOutlivesItsHostsFailure(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second})
	d.Protect([]string{"v1"})
	h := model.Host{Name: "h1", Service: model.ServiceUp}
	step := func(at time.Time, h model.Host, s model.Server) model.Verdict {
		s.Host = "h1"
		d.Step(at, model.Observation{At: at, Full: true, Hosts: []model.Host{h}, Servers: []model.Server{s}})
		return d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "v1"}]
	}
	step(t0, h, model.Server{ID: "v1", Status: model.StatusMigrating, TaskState: "migrating", Intent: model.IntentOn})
	if v := step(t0.Add(2*time.Second), h, model.Server{ID: "v1", Status: model.StatusError, Intent: model.IntentOn}); v.Rule != RuleServerMigration {
		t.Fatalf("migration interrupted: %+v", v)
	}
	h.Service = model.ServiceDown
	for s := 4; s <= 60; s += 2 {
		if v := step(t0.Add(time.Duration(s)*time.Second), h, model.Server{ID: "v1", Status: model.StatusError, Intent: model.IntentOn}); v.Rule != RuleServerMigration {
			t.Fatalf("t=%ds, its host down: %+v, want still %s", s, v, RuleServerMigration)
		}
	}
}
