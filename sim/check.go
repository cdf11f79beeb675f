package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// driver stands between the engine and the simulated cloud: it passes every call on
// (the optional interfaces too) and checks, at the instant of each fence and
// evacuation, what the truth allows.
type driver struct {
	w        *world
	cloud    *sim.Cloud
	accepted map[string]int // "server action" -> actions the cloud carried out for Vigil
	// mutations lists every mutating call Vigil made (sim/dryrun.go): a dry run makes none.
	mutations []string
}

var (
	_ cloud.Compute    = (*driver)(nil)
	_ cloud.Fencer     = (*driver)(nil)
	_ cloud.Identifier = (*driver)(nil)
)

func actionKey(server, action string) string { return server + " " + action }

func (d *driver) ListServers(ctx context.Context, since time.Time) ([]model.Server, error) {
	return d.cloud.ListServers(ctx, since)
}
func (d *driver) ListHosts(ctx context.Context) ([]model.Host, error) { return d.cloud.ListHosts(ctx) }
func (d *driver) Actions(ctx context.Context, id string) ([]model.InstanceAction, error) {
	return d.cloud.Actions(ctx, id)
}
func (d *driver) CanFence(host string) bool { return d.cloud.CanFence(host) }
func (d *driver) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	if slices.Contains(d.w.cfg.Planted, "fence-heard-host") {
		// Planted bug: a fence driver that takes a host silent to Nova (past any grace)
		// and on its management path for dead, though its storage path still hears it:
		// only invariant 5's check of the agents' paths can catch it.
		heard, t := d.cloud.HeardOn(host), d.cloud.Truth(host)
		if since, ok := d.w.heardSince[host]; ok && d.w.now.Sub(since) > heardFor && !t.Reporting && d.w.now.Sub(t.Silent) > time.Minute &&
			!slices.Contains(heard, model.PathManagement) && slices.Contains(heard, model.PathStorage) {
			_ = d.PowerOff(ctx, host)
		}
	}
	return d.cloud.PowerStatus(ctx, host)
}
func (d *driver) Identity(ctx context.Context, host string) (string, error) {
	return d.cloud.Identity(ctx, host)
}

// CloudNow passes on the cloud's clock when the simulated cloud offers one.
func (d *driver) CloudNow() (time.Time, bool) {
	if c, ok := any(d.cloud).(cloud.Clock); ok {
		return c.CloudNow()
	}
	return time.Time{}, false
}

// count records an action the cloud carried out: accepted, or accepted with its
// answer lost.
func (d *driver) count(server, action string, err error) error {
	if err == nil || errors.Is(err, sim.ErrAnswerLost) {
		if d.accepted == nil {
			d.accepted = map[string]int{}
		}
		d.accepted[actionKey(server, action)]++
	}
	return err
}

func (d *driver) Reboot(ctx context.Context, id string, hard bool) error {
	d.mutated("reboot", id)
	d.checkHealthy("reboot", id)
	return d.count(id, cloud.ActionReboot, d.cloud.Reboot(ctx, id, hard))
}

func (d *driver) Rebuild(ctx context.Context, id string) error {
	d.mutated("rebuild", id)
	d.checkHealthy("rebuild", id)
	return d.count(id, cloud.ActionRebuild, d.cloud.Rebuild(ctx, id))
}

func (d *driver) ResetState(ctx context.Context, id string) error {
	d.mutated("resetstate", id)
	return d.cloud.ResetState(ctx, id)
}

func (d *driver) ForceDown(ctx context.Context, host string, down bool) error {
	d.mutated("forcedown", host)
	if down && slices.Contains(d.w.cfg.Planted, "evacuate-before-mark-down") && !d.cloud.CanFence(host) {
		// Planted bug: a host without a BMC is evacuated before its force-down.
		for _, s := range d.cloud.ServersOn(host) {
			if d.w.prot[s.ID] && s.Host == host {
				_ = d.Evacuate(ctx, s.ID, "")
			}
		}
	}
	if !down {
		d.checkReturn(host)
	}
	return d.cloud.ForceDown(ctx, host, down)
}

// Evacuate checks invariants 2, 4 (brake) and 9 before passing the call on.
func (d *driver) Evacuate(ctx context.Context, id, target string) error {
	d.mutated("evacuate", id)
	src := d.cloud.ServerHost(id)
	t := d.cloud.Truth(src)
	pol, _ := d.w.policy(id)
	switch {
	case t.BMC == "" && pol.ServiceFenceOnly:
		// The policy's accepted risk: no BMC, the forced-down service is the fence,
		// but only once Vigil's force-down is visible in the API.
		var seen bool
		for _, h := range d.w.eng.Hosts() {
			if h.Name == src {
				seen = h.ForcedDown
			}
		}
		if !t.ForcedDown || !seen {
			d.w.violate(2, "evacuation of %s from %s (no BMC, policy %s: service_fence_only) before its force-down was confirmed (forced down in the cloud %v, seen by Vigil %v)",
				id, src, pol.Name, t.ForcedDown, seen)
		} else if t.Alive {
			d.w.exempt[id] = src
		}
	case d.fabricFenced(id, src, pol, t):
		// fence_proof bmc-or-fabric: the old copy may run, cut off (sim/fabric.go).
	case t.Power != model.PowerOff:
		d.w.violate(2, "evacuation of %s from %s while that host's power is %s (no verified fence)", id, src, t.Power)
	}
	if _, risk := d.w.exempt[id]; !risk {
		// An evacuation from a live host without a BMC under service_fence_only is
		// the policy's accepted risk (the host was cut off, its flag the only fence;
		// seed 2063: it came back in the very tick of the evacuation, its first
		// heartbeat inside the slack of Vigil's own force-down): invariant 1 exempts
		// its second copy, and invariant 9 its healthy guest.
		d.checkHealthy("evacuate", id)
	}
	d.checkBrake("evacuate "+id, t.Segment)
	d.checkMaintEvacuate(id, src)
	d.checkEvacuation(id, target)
	return d.count(id, cloud.ActionEvacuate, d.cloud.Evacuate(ctx, id, target))
}

// PowerOff checks invariants 5 and 4 (brake) before passing the call on, on the
// host whose power really goes off (the entry may reach another host's BMC).
func (d *driver) PowerOff(ctx context.Context, host string) error {
	d.mutated("poweroff", host)
	entry := d.cloud.Truth(host)
	real := entry.BMC
	if real == "" {
		real = host
	}
	t := d.cloud.Truth(real)
	via := ""
	if real != host {
		via = fmt.Sprintf(" (the fence entry of %s reaches its BMC)", host)
	}
	// Alive and reachable: reporting to the controller long enough that no
	// observation could have shown it down.
	if t.Power == model.PowerOn && t.Reporting && d.w.now.Sub(t.Since) > 25*time.Second {
		d.w.violate(5, "fence of %s%s, alive and reachable since %s", real, via, fmtDur(t.Since.Sub(epoch0)))
	}
	if t.Power == model.PowerOn && t.Reporting && d.allFine(real) {
		d.w.violate(5, "fence of %s%s: its compute service reports and all its servers are fine", real, via)
	}
	// With agents, a host still heard on an independent path (an agent path to the
	// controller, or a peer that reaches it) is alive and reachable: Vigil can tell
	// it from a dead one, and must not fence it.
	if since, heard := d.w.heardSince[real]; t.Power == model.PowerOn && heard && d.w.now.Sub(since) > heardFor {
		d.w.violate(5, "fence of %s%s, heard on %s since %s", real, via, strings.Join(d.cloud.HeardOn(real), ", "), fmtDur(since.Sub(epoch0)))
	}
	if grace, pol := d.grace(host); t.Power == model.PowerOn && !t.Reporting && d.w.now.Sub(t.Silent) < grace {
		d.w.violate(5, "fence of %s%s after %s without heartbeats; policy %s grants a host %s (host_down_grace)",
			real, via, d.w.now.Sub(t.Silent).Round(time.Second), pol, grace)
	}
	d.checkBrake("fence "+host, entry.Segment)
	d.checkMaintFence(host)
	err := d.cloud.PowerOff(ctx, host)
	if d.cloud.Truth(real).Power == model.PowerOff {
		if _, ok := d.w.fencedAt[host]; !ok || t.Power == model.PowerOn {
			d.w.fencedAt[host] = d.w.now
		}
		if t.Power == model.PowerOn {
			d.w.fenced(real)
		}
	}
	return err
}

// allFine: every server assigned to the host or running on it is ACTIVE, with no
// task, running there and only there.
func (d *driver) allFine(host string) bool {
	copies := d.cloud.Copies()
	for _, s := range d.cloud.ServersOn(host) {
		if s.Status != model.StatusActive || s.TaskState != "" || s.Host != host || !slices.Equal(copies[s.ID], []string{host}) {
			return false
		}
	}
	return true
}

// grace is the shortest host_down_grace among the policies of the protected servers
// on the host (the default policy's when there are none).
func (d *driver) grace(host string) (time.Duration, string) {
	g, name := time.Duration(-1), ""
	for _, s := range d.cloud.ServersOn(host) {
		if p, ok := d.w.policy(s.ID); ok && s.Host == host && (g < 0 || p.HostDownGrace < g) {
			g, name = p.HostDownGrace, p.Name
		}
	}
	if g < 0 {
		p := d.w.ecfg.Policies["default"]
		return p.HostDownGrace, p.Name
	}
	return g, name
}

// checkHealthy (invariant 9): no recovery action on a server that has been fine for
// a while: ACTIVE, no task, running on its host and only there, its host reporting,
// its guest fine (not hung, its app answering, its domain running: a dead agent is
// no trouble of the guest's), and unchanged in the cloud for 30 s (a stale
// observation, not a failure).
func (d *driver) checkHealthy(action, id string) {
	s, ok := d.cloud.Server(id)
	if !ok || s.Status != model.StatusActive || s.TaskState != "" || d.cloud.GuestTrouble(id) != "" {
		return
	}
	if c := d.cloud.Copies()[id]; !slices.Equal(c, []string{s.Host}) || !d.cloud.Truth(s.Host).Reporting {
		return
	}
	if fine := d.w.now.Sub(s.Updated); fine > 30*time.Second {
		d.w.violate(9, "%s of %s, ACTIVE and running on %s, unchanged for %s", action, id, s.Host, fine.Round(time.Second))
	}
}

// checkBrake (invariant 4) computes the brake itself from what Vigil sees: per
// segment and over the whole cloud, among the hosts that can host (not disabled, not
// in maintenance), when at least BrakeFraction of them and at least BrakeMinHosts
// look down or suspect, nothing may be fenced or evacuated (in that segment; anywhere).
func (d *driver) checkBrake(what, segment string) {
	lim := d.w.ecfg.Limits
	total, down := map[string]int{}, map[string]int{}
	for _, h := range d.w.eng.Hosts() {
		if h.Disabled || h.Maintenance || d.w.maint[h.Name] || h.Verdict.Host == string(model.HostMaintenance) {
			continue
		}
		total[h.Segment]++
		total[""]++
		if looksDown(h.Verdict) {
			down[h.Segment]++
			down[""]++
		}
	}
	engaged := func(seg string) bool {
		n := down[seg]
		return lim.BrakeMinHosts > 0 && n >= lim.BrakeMinHosts && float64(n) >= lim.BrakeFraction*float64(total[seg])
	}
	if engaged(segment) {
		d.w.violate(4, "%s in segment %s while its brake is engaged (%d of %d hosts that can host look down)", what, segment, down[segment], total[segment])
	}
	if engaged("") {
		d.w.violate(4, "%s while the cloud-wide brake is engaged (%d of %d hosts that can host look down)", what, down[""], total[""])
	}
}

// looksDown: Vigil's verdict says the host failed, or suspects it, or lost it with
// its segment (controller-partitioned). An isolated host does not look down: Vigil
// gives that verdict only to a host its agent's paths or its peers still hear, alive
// for sure; a controller outage that Nova sees as every host down, while every agent
// is heard, is no storm (seeds 43, 48, 93, 128 of the small world: a host that
// really died then, or went silent on every path, may be fenced).
func looksDown(v model.Verdict) bool {
	switch model.HostHealth(v.Host) {
	case model.HostSuspect, model.HostDown, model.HostPartitioned:
		return true
	}
	return v.Failed
}

// onConclusion (invariant 8): nothing is escalated and no step times out while the
// cloud cannot be seen.
func (w *world) onConclusion(e model.Event) {
	if w.eng == nil {
		return
	}
	concl := e.Kind == "incident" && strings.Contains(e.Message, " escalated: ") ||
		e.Kind == "step" && strings.Contains(e.Message, "not confirmed within")
	if c := w.eng.Cloud(); concl && !c.Reachable {
		w.violate(8, "%s %s while the cloud cannot be seen (%s)", e.Subject, e.Message, c.Error)
	}
}

// checkTick runs the invariants that must hold after every step.
func (w *world) checkTick() {
	// 1. Never two copies (the copies are the truth, wherever they came from).
	multi := w.cloud.MultiCopies()
	for _, id := range slices.Sorted(maps.Keys(multi)) {
		if w.fabricCopy(id, multi[id]) {
			continue
		}
		if src, ok := w.exempt[id]; ok && slices.Contains(multi[id], src) && len(multi[id]) == 2 {
			if !w.exemptSeen[id] {
				w.exemptSeen[id] = true
				pol, _ := w.policy(id)
				w.logf("server %s runs on %v: the accepted risk of policy %s (service_fence_only: %s has no BMC and was cut off, not off)", id, multi[id], pol.Name, src)
			}
			continue
		}
		w.violate(1, "server %s runs on %v", id, multi[id])
	}
	if w.eng == nil {
		return
	}
	w.noteMaint() // since when Vigil sees each host in maintenance
	w.checkPortsLeftDown()
	// 3 and 4: one step in flight per server; concurrency cap.
	open := w.eng.OpenIncidents()
	inflight, perServer := 0, map[string]int{}
	for _, in := range open {
		for _, st := range in.Steps {
			if st.State == model.StepIntent || st.State == model.StepIssued {
				inflight++
				if st.Server != "" {
					perServer[st.Server]++
				}
			}
		}
	}
	if lim := w.ecfg.Limits.MaxConcurrent; inflight > lim {
		w.violate(4, "%d steps in flight, limit %d", inflight, lim)
	}
	for id, n := range perServer {
		if n > 1 {
			w.violate(3, "server %s has %d steps in flight at once", id, n)
		}
	}
	w.checkPlacementTick()
	// 7. Everything explained.
	for _, in := range open {
		if in.Rule == "" || len(in.Evidence) == 0 {
			w.violate(7, "incident %d on %s has no rule or evidence", in.ID, in.Subject)
		}
		for _, st := range in.Steps {
			if st.Rule == "" {
				w.violate(7, "step %d (%s) of incident %d has no rule", st.Seq, st.Action, in.ID)
			}
		}
	}
}

// checkEnd runs the checks that need the whole run: liveness and exactly-once.
func (w *world) checkEnd() {
	ctx := context.Background()
	incs, err := w.db.Incidents(ctx, 1<<30)
	if err != nil {
		w.violate(6, "cannot read the journal: %v", err)
		return
	}
	// 3. No step executed twice: each action the cloud carried out for Vigil matches
	// one journaled step that was issued.
	issued := map[string]int{}
	escalated := map[string]bool{} // subject -> has an escalated incident
	for _, in := range incs {
		if in.State == model.IncidentEscalated {
			if in.Reason == "" {
				w.violate(7, "incident %d escalated without a reason", in.ID)
			}
			escalated[in.Subject.String()] = true
		}
		if in.State == model.IncidentResolved && in.Reason == "" {
			w.violate(7, "incident %d resolved without a reason", in.ID)
		}
		if !in.State.Closed() && !w.cfg.DryRun {
			w.violate(6, "incident %d on %s still %s at the end (%s)", in.ID, in.Subject, in.State, in.Reason)
		}
		for _, st := range in.Steps {
			if st.Issued.IsZero() || st.Server == "" {
				continue
			}
			name := map[model.Action]string{model.ActReboot: cloud.ActionReboot, model.ActHardReboot: cloud.ActionReboot,
				model.ActRebuild: cloud.ActionRebuild, model.ActEvacuate: cloud.ActionEvacuate}[st.Action]
			if m, ok := migrateSteps[st.Action]; ok {
				name = m
			}
			issued[actionKey(st.Server, name)]++
		}
	}
	keys := make([]string, 0, len(w.drv.accepted))
	for k := range w.drv.accepted {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if n := w.drv.accepted[k]; n > issued[k] {
			w.violate(3, "%s: the cloud carried it out %d times but the journal shows %d taken (a step repeated, or its outcome lost)", k, n, issued[k])
		}
	}
	w.checkPortsEnd(escalated)
	// 6. Every protected server that failed is ACTIVE again, or answered by an
	// escalated incident (its own or its host's); a server its owner deleted needs
	// nothing.
	servers, err := w.cloud.ListServers(ctx, time.Time{})
	for err != nil { // the API may be down at the very end: the truth is still there
		w.cloud.SetAPIDown(false)
		w.cloud.SetErrorRate(0)
		servers, err = w.cloud.ListServers(ctx, time.Time{})
	}
	w.checkPlacementEnd()
	if w.cfg.DryRun {
		w.checkDryRunEnd(incs) // a dry run answers a failure by journaling what it would do
		return
	}
	copies := w.cloud.Copies()
	for _, s := range servers {
		if !w.prot[s.ID] {
			continue
		}
		// A migration or resize awaiting its owner's confirmation (VERIFY_RESIZE) whose
		// one copy runs on its new host is a running server: the owner's decision is
		// pending (confirm or revert), not a failure, and no HA system should take it
		// (Vigil neither confirms nor reverts for the owner).
		trouble := w.cloud.GuestTrouble(s.ID)
		ok := s.Status == model.StatusActive && len(copies[s.ID]) == 1 && trouble == "" ||
			s.Status == model.StatusVerify && slices.Equal(copies[s.ID], []string{s.Host}) ||
			s.Status == model.StatusShutoff && s.Intent == model.IntentOff
		if _, risk := w.exempt[s.ID]; risk && s.Status == model.StatusActive && len(copies[s.ID]) == 2 {
			ok = true // service_fence_only's accepted risk, logged by check 1
		}
		if s.Status == model.StatusActive && trouble == "" && w.fabricCopy(s.ID, copies[s.ID]) {
			ok = true // the old copy runs on, cut off by the fabric fence (check 1 logs it)
		}
		if ok || escalated["server/"+s.ID] || escalated["host/"+s.Host] {
			continue
		}
		if trouble != "" {
			trouble = ", its guest: " + trouble
		}
		w.violate(6, "protected server %s is %s on %s (copies %v%s) and no incident was escalated for it", s.ID, s.Status, s.Host, copies[s.ID], trouble)
	}
}
