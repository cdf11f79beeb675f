package detect

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A panicked guest is destroyed by libvirt some 200 ms after its panic event: when
// the report that shows the panic and the one that shows the domain shut off
// (crashed) are drained in one step, the verdict is still panicked (CI run of
// issue 14: the second report replaced the first, and the panic was called a crash).
func TestPanicThenDestroyIsPanicked(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := New(Config{HostDownGrace: 10 * time.Second})
	d.Protect([]string{"s1"})
	d.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{{Name: "h1", Service: model.ServiceUp, LastSeenUp: t0}},
		Servers: []model.Server{{ID: "s1", Host: "h1", Status: model.StatusActive, Intent: model.IntentOn, Updated: t0.Add(-time.Minute)}}})
	beat := func(seq uint64, at time.Time, rep *model.HostReport) model.AgentBeat {
		return model.AgentBeat{Host: "h1", Path: model.PathManagement, Boot: "b", Seq: seq, Sent: at, At: at, Interval: time.Second, Report: rep}
	}
	run := &model.HostReport{Domains: []model.Domain{{UUID: "s1", Name: "vm1", State: model.DomainRunning, Reason: model.ReasonBooted, Since: t0}}}
	d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Agents: []model.AgentBeat{beat(1, t0.Add(time.Second), run)}})
	panicAt, offAt := t0.Add(2*time.Second), t0.Add(2200*time.Millisecond)
	panicked := &model.HostReport{Domains: []model.Domain{{UUID: "s1", Name: "vm1", State: model.DomainCrashed, Reason: model.ReasonPanicked, Since: panicAt}},
		Events: []model.DomainEvent{{UUID: "s1", Name: "vm1", At: panicAt, Event: "crashed", Detail: model.ReasonPanicked}}}
	destroyed := &model.HostReport{Domains: []model.Domain{{UUID: "s1", Name: "vm1", State: model.DomainShutoff, Reason: model.ReasonCrashed, Since: offAt}},
		Events: []model.DomainEvent{{UUID: "s1", Name: "vm1", At: offAt, Event: "stopped", Detail: model.ReasonCrashed}}}
	now := t0.Add(2300 * time.Millisecond)
	d.Step(now, model.Observation{At: now, Agents: []model.AgentBeat{beat(2, panicAt, panicked), beat(3, offAt, destroyed)}})
	v := d.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "s1"}]
	if !v.Failed || v.Fault != model.FaultPanicked {
		t.Fatalf("verdict %+v, want failed with fault panicked", v)
	}
	// A crash that is only a crash stays one.
	d2 := New(Config{HostDownGrace: 10 * time.Second})
	d2.Protect([]string{"s1"})
	d2.Step(t0, model.Observation{At: t0, Full: true, Hosts: []model.Host{{Name: "h1", Service: model.ServiceUp, LastSeenUp: t0}},
		Servers: []model.Server{{ID: "s1", Host: "h1", Status: model.StatusActive, Intent: model.IntentOn, Updated: t0.Add(-time.Minute)}}})
	d2.Step(now, model.Observation{At: now, Agents: []model.AgentBeat{beat(1, t0.Add(time.Second), run), beat(2, offAt, destroyed)}})
	if v := d2.View().Verdicts[model.Subject{Kind: model.KindServer, ID: "s1"}]; !v.Failed || v.Fault != model.FaultCrashed {
		t.Fatalf("verdict %+v, want failed with fault crashed", v)
	}
}
