package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Scenarios that check the engine hands the planner what it must weigh (which hosts
// have a BMC, the limits, when an incident closed): with any of them dropped in
// engine.input or engine.apply the other scenarios still passed.

// noBMC is a fence configuration without an entry for some hosts.
type noBMC struct {
	cloud.Fencer
	hosts []string
}

func (f noBMC) CanFence(host string) bool {
	return !slices.Contains(f.hosts, host) && f.Fencer.CanFence(host)
}

func TestHostWithoutBMCIsNeverEvacuatedUnderTheDefaultPolicy(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cfg.Fencer = noBMC{Fencer: w.cloud, hosts: []string{"host-1"}}
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1])
	w.tick()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(2*time.Minute, "the host incident escalated", func() bool {
		in, err := w.db.Incidents(context.Background(), 1)
		return err == nil && len(in) == 1 && in[0].State == model.IncidentEscalated
	})
	in := w.lastIncident()
	if in.Subject.ID != "host-1" || !strings.Contains(in.Reason, "no fence proof") {
		t.Fatalf("incident %s %s: %q, want host-1 escalated for want of a fence\n%s", in.Subject, in.State, in.Reason, w.timeline())
	}
	for range 30 {
		w.tick()
	}
	if c := w.cloud.Calls(); c["evacuate"]+c["bmc-power-off"]+c["force-down"] != 0 {
		t.Fatalf("acted on a host with no BMC under a policy that requires one: %v\n%s", c, w.timeline())
	}
	if h := w.health("web"); h != model.Red {
		t.Fatalf("health %s, want Red (no member healthy, and its host's incident escalated)", h)
	}
}

func TestConcurrencyLimitHoldsInTheEngine(t *testing.T) {
	w := newWorld(t, 3, 3)
	lim := model.DefaultLimits()
	lim.MaxConcurrent = 1
	w.cfg.Limits = lim
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[3], w.ids[6])
	w.tick()
	for _, id := range []string{w.ids[0], w.ids[3], w.ids[6]} {
		if err := w.cloud.Crash(id); err != nil {
			t.Fatal(err)
		}
	}
	most, total := 0, 0
	w.until(3*time.Minute, "all three recovered", func() bool {
		n := 0
		for _, in := range w.eng.OpenIncidents() {
			for _, st := range in.Steps {
				if st.State == model.StepIntent || st.State == model.StepIssued {
					n++
				}
			}
		}
		most = max(most, n)
		total = w.cloud.Calls()["hard-reboot"] + w.cloud.Calls()["reboot"]
		return w.health("web") == model.Green && total > 0
	})
	if most > 1 {
		t.Fatalf("%d steps in flight at once with max_concurrent 1\n%s", most, w.timeline())
	}
	if total != 3 {
		t.Fatalf("%d reboots, want one per crashed server", total)
	}
}

func TestEscalatedFailureIsNotReopened(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("db", w.ids[0])
	w.tick()
	w.cloud.BreakServer(w.ids[0], true)
	if err := w.cloud.Crash(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	w.until(10*time.Minute, "incident escalated", func() bool {
		in, err := w.db.Incidents(context.Background(), 1)
		return err == nil && len(in) == 1 && in[0].State == model.IncidentEscalated
	})
	first := w.lastIncident()
	calls := fmt.Sprint(w.cloud.Calls()["reboot"], w.cloud.Calls()["hard-reboot"], w.cloud.Calls()["rebuild"])
	for range 120 {
		w.tick()
	}
	if in := w.lastIncident(); in.ID != first.ID || len(w.eng.OpenIncidents()) != 0 {
		t.Fatalf("the same failure was reopened as incident %d (%s) after %d escalated\n%s", in.ID, in.State, first.ID, w.timeline())
	}
	if now := fmt.Sprint(w.cloud.Calls()["reboot"], w.cloud.Calls()["hard-reboot"], w.cloud.Calls()["rebuild"]); now != calls {
		t.Fatalf("actions after the escalation: reboot, hard-reboot, rebuild %s, was %s", now, calls)
	}
}

// The configured policy is the one applied: service_fence_only lets a host with no
// BMC be evacuated once its service is forced down, and only then.
func TestServiceFenceOnlyPolicyEvacuatesAHostWithoutBMC(t *testing.T) {
	w := newWorld(t, 3, 2)
	pol := w.cfg.Policies["default"]
	pol.ServiceFenceOnly = true
	w.cfg.Policies = map[string]model.Policy{"default": pol}
	w.cfg.Fencer = noBMC{Fencer: w.cloud, hosts: []string{"host-1"}}
	w.start()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1])
	w.tick()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(2*time.Minute, "both servers ACTIVE elsewhere", func() bool {
		for _, id := range w.ids[:2] {
			if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
				return false
			}
		}
		return w.health("web") == model.Green
	})
	in := w.lastIncident()
	got := actions(in)
	if want := []string{"fence:skipped", "mark-down:succeeded", "evacuate:succeeded", "evacuate:succeeded"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v\n%s", got, want, w.timeline())
	}
	if c := w.cloud.Calls(); c["bmc-power-off"] != 0 {
		t.Fatalf("power-off sent to a host with no BMC: %v", c)
	}
	for _, st := range in.Steps[2:] {
		if st.Started.IsZero() || st.Started.Before(in.Steps[1].Finished) {
			t.Fatalf("evacuation of %s started at %s, before the mark-down was confirmed at %s", st.Server, st.Started, in.Steps[1].Finished)
		}
	}
}
