package plan

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/vigil-ha/vigil/model"
)

// genRecoveries draws a world in the middle of host recoveries: each host up, down
// or up again, seen with any power, forced-down flag and BMC, and each down host's
// incident holding a prefix of its recovery (fence, mark-down, evacuations) in any
// step state. genInput draws steps of random kinds and almost never reaches an
// evacuation (about none in 100 runs), so its evacuation checks rarely run.
func genRecoveries(t *rapid.T) Input {
	pol := model.DefaultPolicy()
	pol.ServiceFenceOnly = rapid.Bool().Draw(t, "serviceFenceOnly")
	in := Input{Now: t0.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "now")) * time.Second),
		Hosts: map[string]model.Host{}, Servers: map[string]model.Server{}, Verdicts: map[model.Subject]model.Verdict{},
		Policies: map[string]model.Policy{"default": pol}, CanFence: map[string]bool{}, LastClosed: map[model.Subject]model.Incident{},
		Limits: model.Limits{MaxConcurrent: rapid.SampledFrom([]int{0, 1, 3, 20, 20, 20}).Draw(t, "max"), BrakeFraction: 0.5, BrakeMinHosts: 3}}
	nh := rapid.IntRange(2, 8).Draw(t, "hosts")
	var members []string
	for i := range nh {
		name := fmt.Sprintf("h%d", i)
		subj := model.Subject{Kind: model.KindHost, ID: name}
		// Mostly up: a cloud with half its hosts down is braked (per segment and
		// cloud-wide), and a generator that brakes every world reaches no evacuation.
		health := rapid.SampledFrom([]model.HostHealth{model.HostUp, model.HostUp, model.HostUp, model.HostUp, model.HostDown, model.HostDown, model.HostSuspect}).Draw(t, "health")
		// Weighted towards what a recovery meets (a failed host mostly powered off, a
		// live one mostly not forced down), every combination still drawn.
		h := model.Host{Name: name, Segment: fmt.Sprintf("s%d", rapid.IntRange(0, 2).Draw(t, "seg")), Service: model.ServiceUp,
			ForcedDown: rapid.IntRange(0, 3).Draw(t, "forced") == 0,
			Power:      rapid.SampledFrom([]model.Power{model.PowerUnknown, model.PowerOn, model.PowerOn, model.PowerOff}).Draw(t, "power"),
			Capacity:   rapid.SampledFrom([]int{0, 4, 4}).Draw(t, "cap")}
		if health != model.HostUp {
			h.Service = model.ServiceDown
			h.ForcedDown = rapid.Bool().Draw(t, "forced")
			h.Power = rapid.SampledFrom([]model.Power{model.PowerUnknown, model.PowerOn, model.PowerOff, model.PowerOff, model.PowerOff}).Draw(t, "power")
			h.Capacity = rapid.SampledFrom([]int{0, 2}).Draw(t, "cap")
		}
		in.Hosts[name] = h
		in.Verdicts[subj] = model.Verdict{Subject: subj, Host: string(health), Failed: health == model.HostDown, Rule: "r", Evidence: []string{"e"}, Since: t0}
		in.CanFence[name] = rapid.Bool().Draw(t, "canFence")
		var here []string
		least := 0
		if health == model.HostDown {
			least = 1 // a failed host with nothing protected on it has no incident
		}
		for j := range rapid.IntRange(least, 2).Draw(t, "servers") {
			id := fmt.Sprintf("v%d-%d", i, j)
			in.Servers[id] = model.Server{ID: id, Host: name, Status: rapid.SampledFrom([]string{model.StatusActive, model.StatusError, model.StatusShutoff}).Draw(t, "status")}
			sv := model.Subject{Kind: model.KindServer, ID: id}
			in.Verdicts[sv] = model.Verdict{Subject: sv, Server: string(model.ServerHealthy), Rule: "r", Since: t0}
			if health == model.HostDown {
				in.Verdicts[sv] = model.Verdict{Subject: sv, Server: string(model.ServerFailed), Failed: true, Rule: model.RuleServerHostDown, Evidence: []string{"e"}, Since: t0}
			}
			members = append(members, id)
			here = append(here, id)
		}
		// A host that failed (and may be up again now) has an incident with a prefix
		// of its recovery.
		if health == model.HostUp && rapid.IntRange(0, 2).Draw(t, "hadIncident") > 0 || len(here) == 0 {
			continue
		}
		inc := model.Incident{ID: int64(i + 1), Subject: subj, State: model.IncidentOpen, Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0}
		add := func(a model.Action, server string, states ...model.StepState) bool {
			st := rapid.SampledFrom(states).Draw(t, "state")
			if st == "" {
				return false
			}
			inc.Steps = append(inc.Steps, model.Step{ID: int64(100*(i+1) + len(inc.Steps) + 1), Incident: inc.ID, Seq: len(inc.Steps) + 1,
				Action: a, Host: name, Server: server, State: st, Rule: "r", Timeout: time.Minute,
				Issued: t0, Finished: t0, Deadline: t0.Add(time.Minute), Attempt: 1})
			return true
		}
		if add(model.ActFence, "", "", model.StepIssued, model.StepSucceeded, model.StepSucceeded, model.StepSucceeded, model.StepFailed, model.StepSkipped, model.StepSkipped) &&
			add(model.ActMarkDown, "", "", model.StepIssued, model.StepSucceeded, model.StepSucceeded, model.StepSucceeded, model.StepFailed) {
			for _, id := range here {
				add(model.ActEvacuate, id, "", "", model.StepIssued, model.StepSucceeded, model.StepFailed)
			}
		}
		// Half the time the cloud shows what the succeeded steps did (the power off,
		// the service forced down), the rest it shows anything: a proof lost since.
		if health != model.HostUp && rapid.Bool().Draw(t, "coherent") {
			if succeeded(inc.Steps, model.ActFence, "") {
				h.Power = model.PowerOff
			}
			if succeeded(inc.Steps, model.ActMarkDown, "") {
				h.ForcedDown = true
			}
			in.Hosts[name] = h
		}
		in.Open = append(in.Open, inc)
	}
	in.Clusters = []model.Cluster{{Name: "c", Members: members, Desired: len(members), Policy: "default"}}
	return in
}

// The fencing invariants over random host recoveries: the input is left as it was; a
// host whose service is up again is neither fenced nor evacuated from; nothing is
// fenced or evacuated in a braked segment; an evacuation needs the host's service
// forced down as the cloud shows it now and, with a BMC, its power off, and without
// one a policy that accepts the service fence alone; the concurrency cap holds.
func TestPlanRecoveryProperties(t *testing.T) {
	seen := map[model.Action]int{}
	rapid.Check(t, func(t *rapid.T) {
		in := genRecoveries(t)
		before := deepClone(in)
		out := Plan(in)
		if !reflect.DeepEqual(before, in) {
			t.Fatalf("Plan modified its input: %s", changedFields(before, in))
		}
		inflight := 0
		for _, inc := range in.Open {
			for _, st := range inc.Steps {
				if st.State == model.StepIssued || st.State == model.StepIntent {
					inflight++
				}
			}
		}
		brakes := Brakes(in.Hosts, in.Verdicts, in.Limits)
		taken := 0
		for _, st := range out.Steps {
			if st.State == model.StepSkipped {
				continue
			}
			taken++
			seen[st.Action]++
			h, v := in.Hosts[st.Host], in.Verdicts[model.Subject{Kind: model.KindHost, ID: st.Host}]
			if st.Action != model.ActFence && st.Action != model.ActEvacuate {
				continue
			}
			if why, ok := brakeOn(brakes, h.Segment); ok {
				t.Fatalf("%s of %s%s in braked segment %s: %s", st.Action, st.Host, st.Server, h.Segment, why)
			}
			if v.Host == string(model.HostUp) && h.Power != model.PowerOff {
				t.Fatalf("%s %s%s while the host is up (power %q)", st.Action, st.Host, st.Server, h.Power)
			}
			if st.Action != model.ActEvacuate {
				continue
			}
			switch {
			case !h.ForcedDown:
				t.Fatalf("evacuation of %s from %s whose service the cloud does not show forced down", st.Server, st.Host)
			case in.CanFence[st.Host] && h.Power != model.PowerOff:
				t.Fatalf("evacuation of %s from %s (BMC) whose power is %q", st.Server, st.Host, h.Power)
			case !in.CanFence[st.Host] && !in.Policies["default"].ServiceFenceOnly:
				t.Fatalf("evacuation of %s from %s with no BMC under a policy that requires one", st.Server, st.Host)
			}
		}
		if budget := max(0, in.Limits.MaxConcurrent-inflight); taken > budget {
			t.Fatalf("%d steps planned with %d in flight and max_concurrent %d", taken, inflight, in.Limits.MaxConcurrent)
		}
	})
	// The checks above run only on the steps planned: a generator that never reaches
	// a fence or an evacuation would make them pass on anything.
	if seen[model.ActFence] == 0 || seen[model.ActEvacuate] == 0 {
		t.Fatalf("the generated worlds planned %v: no fence or no evacuation to check", seen)
	}
	t.Logf("steps checked: %v", seen)
}
