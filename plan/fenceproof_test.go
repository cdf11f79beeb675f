package plan

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// hostRecovery is one point of the space where the fence rules decide: host h0 is
// down with protected servers on it, its incident has a fence step and a mark-down
// step in any state (or none yet), and the cloud shows its service forced down or
// not, its power on, off or unknown, with or without a BMC, under a policy that may
// accept the service fence alone. genInput draws the whole world and rarely lands
// here, so this space is walked exhaustively instead.
type hostRecovery struct {
	forcedDown, canFence, serviceFenceOnly bool
	power                                  model.Power
	fence, markDown                        model.StepState // "" for no such step yet
	elapsed                                time.Duration
}

func (c hostRecovery) String() string {
	return fmt.Sprintf("forced_down=%v power=%q bmc=%v service_fence_only=%v fence=%q mark-down=%q after %s",
		c.forcedDown, c.power, c.canFence, c.serviceFenceOnly, c.fence, c.markDown, c.elapsed)
}

func (c hostRecovery) input() Input {
	pol := model.DefaultPolicy()
	pol.ServiceFenceOnly = c.serviceFenceOnly
	in := Input{Now: t0.Add(c.elapsed),
		Hosts: map[string]model.Host{}, Servers: map[string]model.Server{}, Verdicts: map[model.Subject]model.Verdict{},
		Policies: map[string]model.Policy{"default": pol}, CanFence: map[string]bool{}, LastClosed: map[model.Subject]model.Incident{},
		Limits: model.Limits{MaxConcurrent: 10, BrakeFraction: 0.9, BrakeMinHosts: 3}}
	for i := range 3 {
		name := fmt.Sprintf("h%d", i)
		in.Hosts[name] = model.Host{Name: name, Segment: "s", Service: model.ServiceUp, Capacity: 4}
		in.Verdicts[model.Subject{Kind: model.KindHost, ID: name}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: name},
			Host: string(model.HostUp), Rule: "r", Since: t0}
		in.CanFence[name] = true
	}
	down := model.Subject{Kind: model.KindHost, ID: "h0"}
	in.Hosts["h0"] = model.Host{Name: "h0", Segment: "s", Service: model.ServiceDown, Capacity: 4, ForcedDown: c.forcedDown, Power: c.power}
	in.Verdicts[down] = model.Verdict{Subject: down, Host: string(model.HostDown), Failed: true, Rule: "host-service-down-past-grace", Evidence: []string{"e"}, Since: t0}
	in.CanFence["h0"] = c.canFence
	var members []string
	for i, status := range []string{model.StatusActive, model.StatusError} {
		id := fmt.Sprintf("v%d", i)
		in.Servers[id] = model.Server{ID: id, Host: "h0", Status: status}
		in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}] = model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: id},
			Server: string(model.ServerFailed), Failed: true, Rule: model.RuleServerHostDown, Evidence: []string{"e"}, Since: t0}
		members = append(members, id)
	}
	in.Clusters = []model.Cluster{{Name: "c", Members: members, Desired: len(members), Policy: "default"}}
	inc := model.Incident{ID: 1, Subject: down, State: model.IncidentOpen, Policy: "default", Rule: "r", Evidence: []string{"e"}, Opened: t0}
	for _, s := range []struct {
		a  model.Action
		st model.StepState
	}{{model.ActFence, c.fence}, {model.ActMarkDown, c.markDown}} {
		if s.st != "" {
			inc.Steps = append(inc.Steps, model.Step{ID: int64(len(inc.Steps) + 1), Incident: 1, Seq: len(inc.Steps) + 1, Action: s.a, Host: "h0",
				State: s.st, Rule: "r", Timeout: time.Minute, Issued: t0, Finished: t0, Deadline: t0.Add(time.Minute), Attempt: 1})
		}
	}
	in.Open = []model.Incident{inc}
	return in
}

// No evacuation without the fence and the mark-down, both as the cloud shows them
// now: the service forced down, and the power off unless the policy accepts the
// service fence alone for a host with no BMC (DESIGN.md invariant 1).
func TestPlanEvacuatesOnlyBehindACurrentFenceAndMarkDown(t *testing.T) {
	bools := []bool{false, true}
	cases, evacuating := 0, 0
	for _, forced := range bools {
		for _, canFence := range bools {
			for _, sfo := range bools {
				for _, power := range []model.Power{model.PowerUnknown, model.PowerOn, model.PowerOff} {
					for _, fence := range []model.StepState{"", model.StepIssued, model.StepSucceeded, model.StepFailed, model.StepSkipped} {
						for _, md := range []model.StepState{"", model.StepIssued, model.StepSucceeded, model.StepFailed} {
							for _, elapsed := range []time.Duration{time.Second, 61 * time.Second, 5 * time.Minute} {
								c := hostRecovery{forced, canFence, sfo, power, fence, md, elapsed}
								cases++
								in := c.input()
								before := deepClone(in)
								out := Plan(in)
								if !reflect.DeepEqual(before, in) {
									t.Fatalf("%s: Plan modified its input: %s", c, changedFields(before, in))
								}
								for _, st := range out.Steps {
									if st.Action != model.ActEvacuate || st.State == model.StepSkipped {
										continue
									}
									evacuating++
									switch {
									case !forced:
										t.Errorf("%s: evacuation of %s from a host whose service the cloud does not show forced down", c, st.Server)
									case canFence && power != model.PowerOff:
										t.Errorf("%s: evacuation of %s from a host with a BMC whose power is not off", c, st.Server)
									case !canFence && !sfo:
										t.Errorf("%s: evacuation of %s from a host with no BMC under a policy that requires one", c, st.Server)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	// The walk must reach the evacuations it guards, or it proves nothing.
	if evacuating == 0 {
		t.Fatalf("none of %d cases planned an evacuation", cases)
	}
	t.Logf("%d cases, %d evacuation steps checked", cases, evacuating)
}
