package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// fabricFixture: h1 is down with protected servers a and b; its BMC is configured
// but does not answer (its power unknown); the cloud offers Neutron and Cinder.
func fabricFixture(proof string) *fixture {
	f := newFixture(3)
	pol := model.DefaultPolicy()
	pol.FenceProof = proof
	f.in.Policies["default"] = pol
	f.in.Fabric = Fabric{Configured: true, Ports: true, Volumes: true}
	f.server("b", "h1", model.StatusActive)
	f.in.Clusters[0].Members = []string{"a", "b"}
	f.hostDown("h1")
	return f
}

// round plans once; fabric steps are confirmed by the executor at once (it reads
// them back), the others are issued.
func (f *fixture) round() Output {
	out := Plan(f.in)
	f.in.Open = append(f.in.Open, out.Open...)
	for i := range f.in.Open {
		inc := &f.in.Open[i]
		for _, st := range out.Steps {
			if st.Incident != inc.ID {
				continue
			}
			st.ID = int64(len(inc.Steps) + 1 + int(-inc.ID)*100)
			switch {
			case st.State != model.StepPlanned:
			case st.Action == model.ActPortsDown || st.Action == model.ActDetachVols || st.Action == model.ActPortsUp:
				st.State, st.Issued, st.Finished = model.StepSucceeded, f.in.Now, f.in.Now
			default:
				st.State, st.Issued, st.Deadline = model.StepIssued, f.in.Now, f.in.Now.Add(st.Timeout)
			}
			inc.Steps = append(inc.Steps, st)
		}
		for _, u := range out.Updates {
			for j := range inc.Steps {
				if inc.Steps[j].ID == u.Step && u.Incident == inc.ID {
					inc.Steps[j].State, inc.Steps[j].Error, inc.Steps[j].Retryable, inc.Steps[j].Finished = u.State, u.Error, u.Retryable, f.in.Now
				}
			}
		}
		for _, c := range out.Changes {
			if c.Incident == inc.ID {
				inc.State, inc.Reason = c.State, c.Reason
			}
		}
	}
	return out
}

// movedTo shows server id ACTIVE and healthy on host, seen now.
func (f *fixture) movedTo(id, host string) {
	f.in.Servers[id] = model.Server{ID: id, Host: host, Status: model.StatusActive}
	f.in.Verdicts[model.Subject{Kind: model.KindServer, ID: id}] = model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: id},
		Server: "healthy", Rule: "server-active", Since: f.in.Now}
}

// Acceptance 1 in the planner: with fence_proof bmc-or-fabric and a BMC that does
// not answer, each server is cut (ports down, then volumes, in one round) and only
// then, in the next round, evacuated; its ports go up once it runs elsewhere; the incident then resolves.
func TestFabricProofCutsEachServerBeforeItsEvacuation(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	var all []string
	for i := range 12 {
		f.later(2 * time.Second)
		f.forcedDown(i > 0)
		for _, id := range []string{"a", "b"} {
			if len(f.in.Open) == 0 {
				break
			}
			if st := lastOf(f.in.Open[0].Steps, model.ActEvacuate, id); st != nil && st.State == model.StepIssued && f.in.Servers[id].Host == "h1" {
				f.movedTo(id, map[string]string{"a": "h2", "b": "h3"}[id])
			}
		}
		out := f.round()
		all = append(all, steps(out))
		for _, st := range out.Steps {
			if st.Action == model.ActEvacuate && (!succeeded(f.in.Open[0].Steps, model.ActPortsDown, st.Server) || !succeeded(f.in.Open[0].Steps, model.ActDetachVols, st.Server)) {
				t.Fatalf("round %d: evacuation of %s before its ports were down and its volumes cut: %q", i, st.Server, strings.Join(all, " | "))
			}
		}
		if f.in.Open[0].State.Closed() {
			break
		}
	}
	got := strings.Join(all, " | ")
	if !strings.HasPrefix(got, "fence(skipped),mark-down | ports-down,volumes-cut,ports-down,volumes-cut | evacuate→h2,evacuate→h3") {
		t.Fatalf("steps %q", got)
	}
	if inc := f.in.Open[0]; inc.State != model.IncidentResolved || !succeeded(inc.Steps, model.ActPortsUp, "a") || !succeeded(inc.Steps, model.ActPortsUp, "b") {
		t.Fatalf("incident %s (%s), steps %q: want resolved after both servers' ports went up", inc.State, inc.Reason, got)
	}
	if r := f.in.Open[0].Steps[0].Rule; !strings.HasPrefix(r, ruleFabricProof) || !strings.Contains(r, "does not answer") {
		t.Fatalf("fence step's rule %q: want %s naming the silent BMC", r, ruleFabricProof)
	}
}

// The default proof (bmc) never accepts the fabric: the same host waits on its BMC
// and escalates at the deadline with a reason naming fence_proof.
func TestDefaultProofEscalatesWithoutTheBMCNamingFenceProof(t *testing.T) {
	f := fabricFixture(model.FenceProofBMC)
	for i := range 40 {
		f.later(30 * time.Second)
		f.forcedDown(i > 0)
		out := f.round()
		if s := steps(out); strings.Contains(s, "evacuate") || strings.Contains(s, "ports-down") {
			t.Fatalf("round %d: steps %q with no BMC proof and fence_proof bmc", i, s)
		}
		// The fence gets no answer.
		for j := range f.in.Open[0].Steps {
			if st := &f.in.Open[0].Steps[j]; st.Action == model.ActFence && st.State == model.StepIssued {
				st.State, st.Error, st.Retryable, st.Finished = model.StepFailed, "power off: BMC: cloud unavailable: no answer", true, f.in.Now
			}
		}
		if f.in.Open[0].State == model.IncidentEscalated {
			break
		}
	}
	inc := f.in.Open[0]
	if inc.State != model.IncidentEscalated || !strings.Contains(inc.Reason, "fence_proof bmc") {
		t.Fatalf("incident %s: %q; want escalated with a reason naming fence_proof", inc.State, inc.Reason)
	}
}

// Rule host-isolated-alive holds under bmc-or-fabric: an isolated host is neither
// fenced nor cut.
func TestFabricProofNeverCutsAnIsolatedHost(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"},
		Host: string(model.HostIsolated), Failed: true, Rule: "host-isolated", Since: f.in.Now, Evidence: []string{"heard on storage"}}
	for range 5 {
		f.later(2 * time.Second)
		if s := steps(f.round()); s != "" {
			t.Fatalf("steps %q on an isolated host", s)
		}
	}
}

// A refused cut (Cinder without a service token) under the fabric proof escalates
// with Cinder's words and names the ports Vigil left down.
func TestFabricProofRefusedEscalatesWithTheReason(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	f.in.Clusters[0].Members = []string{"a"}
	delete(f.in.Servers, "b")
	for i := range 2 {
		f.later(2 * time.Second)
		f.forcedDown(i > 0)
		f.round()
	}
	st := lastOf(f.in.Open[0].Steps, model.ActDetachVols, "a")
	if st == nil {
		t.Fatalf("no volumes-cut in %+v", f.in.Open[0].Steps)
	}
	st.State, st.Error, st.Retryable = model.StepFailed, "Cinder refuses to detach without a service token: configure cloud.service_cloud", false
	f.later(2 * time.Second)
	if s := stepsOf(f.round()); strings.Contains(s, "evacuate") {
		t.Fatalf("evacuated after a refused cut: %q", s)
	}
	inc := f.in.Open[0]
	if inc.State != model.IncidentEscalated || !strings.Contains(inc.Reason, "service token") || !strings.Contains(inc.Reason, "ports of a were left admin down") {
		t.Fatalf("incident %s: %q", inc.State, inc.Reason)
	}
}

func stepsOf(out Output) string { return steps(out) }

// With a BMC that answers, the fabric is extra safety: fence, mark down, cut, then
// evacuate; the BMC stays the proof.
func TestFabricFenceIsExtraSafetyAfterTheBMC(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	f.in.Clusters[0].Members = []string{"a"}
	delete(f.in.Servers, "b")
	h := f.in.Hosts["h1"]
	h.Power = model.PowerOn
	f.in.Hosts["h1"] = h
	var all []string
	for i := range 8 {
		f.later(2 * time.Second)
		if i > 0 {
			h := f.in.Hosts["h1"]
			h.Power = model.PowerOff
			h.ForcedDown = i > 1
			f.in.Hosts["h1"] = h
		}
		all = append(all, steps(f.round()))
	}
	if got := strings.Join(all, " | "); !strings.HasPrefix(got, "fence | mark-down | ports-down,volumes-cut | evacuate→h2") {
		t.Fatalf("steps %q", got)
	}
}

// A host that comes back after its servers' ports went down gets them up again
// before its incident resolves.
func TestPortsGoUpWhenTheHostComesBack(t *testing.T) {
	f := fabricFixture(model.FenceProofBMCOrFabric)
	f.in.Clusters[0].Members = []string{"a"}
	delete(f.in.Servers, "b")
	for i := range 3 {
		f.later(2 * time.Second)
		f.forcedDown(i > 0)
		f.round()
	}
	if !succeeded(f.in.Open[0].Steps, model.ActPortsDown, "a") {
		t.Fatalf("ports not down: %+v", f.in.Open[0].Steps)
	}
	f.in.Hosts["h1"] = model.Host{Name: "h1", Segment: "s", Service: model.ServiceUp, Capacity: 10, ForcedDown: true}
	f.in.Verdicts[model.Subject{Kind: model.KindHost, ID: "h1"}] = model.Verdict{Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, Host: "up", Since: f.in.Now}
	f.later(2 * time.Second)
	if got := steps(f.round()); got != "ports-up" {
		t.Fatalf("host back: steps %q, want ports-up", got)
	}
	f.later(2 * time.Second)
	f.round()
	if inc := f.in.Open[0]; inc.State != model.IncidentResolved {
		t.Fatalf("incident %s (%s), want resolved once the ports are up", inc.State, inc.Reason)
	}
}

// hostPolicy: the strictest proof of a host's servers wins; the fabric fence is on
// when any policy asks for it.
func TestHostPolicyMergesProofAndFabricFence(t *testing.T) {
	f := newFixture(2)
	strict := model.DefaultPolicy()
	strict.Name, strict.FabricFence = "strict", false
	loose := model.DefaultPolicy()
	loose.Name, loose.FenceProof = "loose", model.FenceProofBMCOrFabric
	f.in.Policies["strict"], f.in.Policies["loose"] = strict, loose
	f.server("b", "h1", model.StatusActive)
	f.in.Clusters = []model.Cluster{{Name: "s", Members: []string{"a"}, Policy: "strict"}, {Name: "l", Members: []string{"b"}, Policy: "loose"}}
	p := &planner{in: &f.in, member: map[string]string{"a": "s", "b": "l"}}
	got := p.hostPolicy([]string{"a", "b"})
	if got.Proof() != model.FenceProofBMC || !got.FabricFence {
		t.Fatalf("merged proof %q fabric %v, want bmc and true", got.Proof(), got.FabricFence)
	}
}
