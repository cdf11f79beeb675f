package detect

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// beatAt feeds one beat of h1's agent on path at offset at.
func beatAt(d *Detector, p string, seq uint64, at time.Duration) {
	now := t0.Add(at)
	d.Step(now, model.Observation{At: now, Agents: []model.AgentBeat{{Host: "h1", Path: p, Boot: "b", Seq: seq, At: now, Interval: time.Second}}})
}

// A BMC that says off while the host's agent goes on beating is doubted, and no
// dead-with-proof verdict comes of it; one that never said on proves nothing.
func TestBMCOffWhileTheAgentBeats(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second})
	d.Step(t0, model.Observation{At: t0, Hosts: []model.Host{up("h1")}, Power: map[string]model.Power{"h1": model.PowerOn}})
	for i := 1; i <= 10; i++ {
		beatAt(d, model.PathStorage, uint64(i), time.Duration(i)*time.Second)
	}
	d.Step(t0.Add(10500*time.Millisecond), model.Observation{At: t0.Add(10500 * time.Millisecond), Power: map[string]model.Power{"h1": model.PowerOff}})
	for i := 11; i <= 15; i++ {
		beatAt(d, model.PathStorage, uint64(i), time.Duration(i)*time.Second)
	}
	if d.View().FenceDoubt["h1"] == "" {
		t.Fatal("BMC says off while the agent beats: no fence doubt")
	}
	if v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}]; v.Failed {
		t.Fatalf("host failed while its agent beats: %+v", v)
	}
}

func TestDeadByBMCNeedsThePowerSeenOn(t *testing.T) {
	for _, seenOn := range []bool{true, false} {
		d := New(Config{HostDownGrace: time.Hour})
		first := model.PowerOff
		if seenOn {
			first = model.PowerOn
		}
		// The agent is heard only after the BMC's first answer (and within an
		// interval of it: no doubt): "heard alive before the off" must not stand in
		// for "seen on" here.
		d.Step(t0, model.Observation{At: t0, Hosts: []model.Host{up("h1")}, Power: map[string]model.Power{"h1": first}})
		beatAt(d, model.PathManagement, 1, 500*time.Millisecond)
		d.Step(t0.Add(time.Second), model.Observation{At: t0.Add(time.Second), Power: map[string]model.Power{"h1": model.PowerOff}})
		d.Step(t0.Add(10*time.Second), model.Observation{At: t0.Add(10 * time.Second), Power: map[string]model.Power{"h1": model.PowerOff}})
		v := d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}]
		if dead := v.Rule == RuleHostBMCOff && v.Failed; dead != seenOn {
			t.Fatalf("BMC seen on: %v: verdict %s (%s), want dead=%v", seenOn, v.Host, v.Rule, seenOn)
		}
	}
}
