package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/vigil-ha/vigil/model"
)

// genInput draws an arbitrary world: hosts in any state, servers anywhere, clusters,
// and open host and server incidents with arbitrary journaled steps.
func genInput(t *rapid.T) Input {
	in := Input{Now: t0.Add(time.Duration(rapid.IntRange(0, 3600).Draw(t, "now")) * time.Second),
		Hosts: map[string]model.Host{}, Servers: map[string]model.Server{}, Verdicts: map[model.Subject]model.Verdict{},
		Policies: map[string]model.Policy{"default": model.DefaultPolicy()}, CanFence: map[string]bool{},
		LastClosed: map[model.Subject]model.Incident{},
		Limits:     model.Limits{MaxConcurrent: rapid.IntRange(0, 6).Draw(t, "max"), BrakeFraction: 0.5, BrakeMinHosts: 3}}
	pol := model.DefaultPolicy()
	pol.ServiceFenceOnly = rapid.Bool().Draw(t, "serviceFenceOnly")
	in.Policies["default"] = pol
	nh := rapid.IntRange(1, 6).Draw(t, "hosts")
	var hosts []string
	for i := range nh {
		name := fmt.Sprintf("h%d", i)
		hosts = append(hosts, name)
		in.Hosts[name] = model.Host{Name: name, Segment: fmt.Sprintf("s%d", rapid.IntRange(0, 1).Draw(t, "seg")),
			Service:    rapid.SampledFrom([]model.ServiceState{model.ServiceUp, model.ServiceDown}).Draw(t, "svc"),
			ForcedDown: rapid.Bool().Draw(t, "forced"), Power: rapid.SampledFrom([]model.Power{"", model.PowerOn, model.PowerOff}).Draw(t, "power"),
			Capacity: rapid.IntRange(0, 4).Draw(t, "cap")}
		health := rapid.SampledFrom([]model.HostHealth{model.HostUp, model.HostSuspect, model.HostDown, model.HostMaintenance}).Draw(t, "hh")
		in.Verdicts[model.Subject{Kind: model.KindHost, ID: name}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: name},
			Host: string(health), Failed: health == model.HostDown, Rule: "r", Evidence: []string{"e"}, Since: t0}
		in.CanFence[name] = rapid.Bool().Draw(t, "canFence")
	}
	ns := rapid.IntRange(0, 8).Draw(t, "servers")
	var members []string
	for i := range ns {
		id := fmt.Sprintf("v%d", i)
		status := rapid.SampledFrom([]string{model.StatusActive, model.StatusError, model.StatusShutoff, model.StatusRebuild}).Draw(t, "status")
		in.Servers[id] = model.Server{ID: id, Host: rapid.SampledFrom(hosts).Draw(t, "on"), Status: status}
		failed := status == model.StatusError || status == model.StatusShutoff
		health := model.ServerHealthy
		if failed {
			health = model.ServerFailed
		}
		in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}] = model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: id},
			Server: string(health), Failed: failed, Rule: "r", Evidence: []string{"e"}, Since: t0}
		if rapid.Bool().Draw(t, "protected") {
			members = append(members, id)
		}
	}
	in.Clusters = []model.Cluster{{Name: "c", Members: members, Desired: len(members), Policy: "default"}}
	ni := rapid.IntRange(0, 3).Draw(t, "incidents")
	for i := range ni {
		inc := model.Incident{ID: int64(i + 1), State: model.IncidentOpen, Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0}
		if rapid.Bool().Draw(t, "hostIncident") || len(members) == 0 {
			inc.Subject = model.Subject{Kind: model.KindHost, ID: rapid.SampledFrom(hosts).Draw(t, "ih")}
		} else {
			inc.Subject = model.Subject{Kind: model.KindServer, ID: rapid.SampledFrom(members).Draw(t, "is")}
		}
		nst := rapid.IntRange(0, 4).Draw(t, "steps")
		for j := range nst {
			st := model.Step{ID: int64(100*i + j + 1), Incident: inc.ID, Seq: j + 1, Rule: "r", Timeout: time.Minute,
				Action: rapid.SampledFrom([]model.Action{model.ActFence, model.ActMarkDown, model.ActEvacuate, model.ActReboot, model.ActRebuild}).Draw(t, "act"),
				State:  rapid.SampledFrom([]model.StepState{model.StepIssued, model.StepSucceeded, model.StepFailed}).Draw(t, "state"),
				Issued: t0, Finished: t0, Deadline: t0.Add(time.Minute)}
			if st.Action == model.ActEvacuate || st.Action == model.ActReboot || st.Action == model.ActRebuild {
				if len(members) > 0 {
					st.Server = rapid.SampledFrom(members).Draw(t, "ss")
				}
			} else {
				st.Host = inc.Subject.ID
			}
			inc.Steps = append(inc.Steps, st)
		}
		in.Open = append(in.Open, inc)
	}
	// The last closed incident of some subjects, closed before or after their
	// verdict's Since (the same failure already answered, or an older one).
	// (Drawn in a fixed order: rapid replays a failing case from its draws.)
	for _, subj := range slices.SortedFunc(maps.Keys(in.Verdicts), func(a, b model.Subject) int { return strings.Compare(a.String(), b.String()) }) {
		if !rapid.Bool().Draw(t, "closed") {
			continue
		}
		closed := t0.Add(time.Duration(rapid.IntRange(-60, 60).Draw(t, "closedAt")) * time.Second)
		in.LastClosed[subj] = model.Incident{ID: int64(1000 + len(in.LastClosed)), Subject: subj, Policy: "default",
			State: rapid.SampledFrom([]model.IncidentState{model.IncidentResolved, model.IncidentEscalated}).Draw(t, "closedState"),
			Rule:  "r", Evidence: []string{"e"}, Opened: t0.Add(-time.Hour), Closed: closed,
			Steps: []model.Step{{ID: int64(10000 + len(in.LastClosed)), Action: model.ActReboot, State: model.StepFailed, Rule: "r"}}}
	}
	return in
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		before := clone(in)
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
		taken := 0
		brakes := Brakes(in.Hosts, in.Verdicts, in.Limits)
		for _, st := range out.Steps {
			if st.Rule == "" {
				t.Fatalf("step without a rule: %+v", st)
			}
			if st.State != model.StepSkipped {
				taken++
			}
			if st.Action != model.ActEvacuate && st.Action != model.ActFence {
				continue
			}
			host := st.Host
			if v := in.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]; st.Action == model.ActFence && st.State != model.StepSkipped &&
				v.Host == string(model.HostUp) && in.Hosts[host].Power != model.PowerOff {
				t.Fatalf("fence of %s whose service is up", host)
			}
			if _, ok := brakes[in.Hosts[host].Segment]; ok {
				t.Fatalf("%s planned in braked segment %s", st.Action, in.Hosts[host].Segment)
			}
			if st.Action == model.ActEvacuate {
				if !in.Hosts[host].ForcedDown {
					t.Fatalf("evacuation from %s whose compute service the cloud does not show forced down (mark-down not confirmed)", host)
				}
				if in.CanFence[host] && in.Hosts[host].Power != model.PowerOff {
					t.Fatalf("evacuation from %s whose power is %q (no current fence proof)", host, in.Hosts[host].Power)
				}
				if !in.CanFence[host] && !in.Policies["default"].ServiceFenceOnly {
					t.Fatalf("evacuation from %s with no BMC under a policy that requires one", host)
				}
				if v := in.Verdicts[model.Subject{Kind: model.KindHost, ID: host}]; v.Host == string(model.HostUp) && in.Hosts[host].Power != model.PowerOff {
					t.Fatalf("evacuation from %s that is up", host)
				}
			}
		}
		if budget := max(0, in.Limits.MaxConcurrent-inflight); taken > budget {
			t.Fatalf("%d steps planned with %d in flight and max_concurrent %d", taken, inflight, in.Limits.MaxConcurrent)
		}
	})
}

// clone copies the whole input, maps and slices inside structs included: a
// shallow copy shares Policies, LastClosed and each cluster's Members with the
// input, and a Plan that wrote there went unseen.
func clone(in Input) Input { return deepClone(in) }
