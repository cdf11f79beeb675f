package sim

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/plan"
)

// driver stands between the engine and the simulated cloud: it passes every call on
// and checks, at the instant of each fence and evacuation, what the truth allows.
type driver struct {
	w        *world
	cloud    *sim.Cloud
	accepted map[string]int // "server action" -> actions the cloud accepted from Vigil
}

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
	return d.cloud.PowerStatus(ctx, host)
}

// CloudNow passes the simulated cloud's clock on (cloud.Clock), as a real driver does.
func (d *driver) CloudNow() (time.Time, bool) { return d.cloud.CloudNow() }

func (d *driver) count(server, action string, err error) error {
	if err == nil {
		if d.accepted == nil {
			d.accepted = map[string]int{}
		}
		d.accepted[actionKey(server, action)]++
	}
	return err
}

func (d *driver) Reboot(ctx context.Context, id string, hard bool) error {
	return d.count(id, cloud.ActionReboot, d.cloud.Reboot(ctx, id, hard))
}

func (d *driver) Rebuild(ctx context.Context, id string) error {
	return d.count(id, cloud.ActionRebuild, d.cloud.Rebuild(ctx, id))
}

func (d *driver) ResetState(ctx context.Context, id string) error {
	return d.cloud.ResetState(ctx, id)
}

func (d *driver) ForceDown(ctx context.Context, host string, down bool) error {
	return d.cloud.ForceDown(ctx, host, down)
}

// Evacuate checks invariants 2 and 4 (brake) before passing the call on.
func (d *driver) Evacuate(ctx context.Context, id, target string) error {
	src := d.cloud.ServerHost(id)
	t := d.cloud.Truth(src)
	if t.Power != model.PowerOff {
		d.w.violate(2, "evacuation of %s from %s while that host's power is %s (no verified fence)", id, src, t.Power)
	}
	d.checkBrake("evacuate "+id, t.Segment)
	return d.count(id, cloud.ActionEvacuate, d.cloud.Evacuate(ctx, id, target))
}

// PowerOff checks invariants 5 and 4 (brake) before passing the call on.
func (d *driver) PowerOff(ctx context.Context, host string) error {
	t := d.cloud.Truth(host)
	// Alive and reachable: reporting to the controller long enough that no
	// observation could have shown it down.
	if t.Power == model.PowerOn && t.Reporting && d.w.now.Sub(t.Since) > 25*time.Second {
		d.w.violate(5, "fence of %s, alive and reachable since %s", host, fmtDur(t.Since.Sub(epoch0)))
	}
	d.checkBrake("fence "+host, t.Segment)
	return d.cloud.PowerOff(ctx, host)
}

func (d *driver) checkBrake(what, segment string) {
	hosts := map[string]model.Host{}
	verdicts := map[model.Subject]model.Verdict{}
	for _, h := range d.w.eng.Hosts() {
		hosts[h.Name] = h.Host
		verdicts[model.Subject{Kind: model.KindHost, ID: h.Name}] = h.Verdict
	}
	if reason, ok := plan.Brakes(hosts, verdicts, d.w.ecfg.Limits)[segment]; ok {
		d.w.violate(4, "%s in segment %s while its brake is engaged (%s)", what, segment, reason[:40])
	}
}

// checkTick runs the invariants that must hold after every step.
func (w *world) checkTick() {
	// 1. Never two copies.
	multi := w.cloud.MultiCopies()
	for _, id := range slices.Sorted(maps.Keys(multi)) {
		w.violate(1, "server %s runs on %v", id, multi[id])
	}
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
	// 3. No step executed twice: each action the cloud accepted from Vigil matches
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
		if !in.State.Closed() {
			w.violate(6, "incident %d on %s still %s at the end (%s)", in.ID, in.Subject, in.State, in.Reason)
		}
		for _, st := range in.Steps {
			if st.Issued.IsZero() || st.Server == "" {
				continue
			}
			name := map[model.Action]string{model.ActReboot: cloud.ActionReboot, model.ActHardReboot: cloud.ActionReboot,
				model.ActRebuild: cloud.ActionRebuild, model.ActEvacuate: cloud.ActionEvacuate}[st.Action]
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
			w.violate(3, "%s: the cloud accepted it %d times but the journal shows %d taken (a step repeated, or its outcome lost)", k, n, issued[k])
		}
	}
	// 6. Every protected server that failed is ACTIVE again, or answered by an
	// escalated incident (its own or its host's).
	servers, err := w.cloud.ListServers(ctx, time.Time{})
	for err != nil { // the API may be down at the very end: the truth is still there
		w.cloud.SetAPIDown(false)
		w.cloud.SetErrorRate(0)
		servers, err = w.cloud.ListServers(ctx, time.Time{})
	}
	copies := w.cloud.Copies()
	for _, s := range servers {
		if !w.prot[s.ID] {
			continue
		}
		ok := s.Status == model.StatusActive && len(copies[s.ID]) == 1 ||
			s.Status == model.StatusShutoff && s.Intent == model.IntentOff
		if ok || escalated["server/"+s.ID] || escalated["host/"+s.Host] {
			continue
		}
		w.violate(6, "protected server %s is %s on %s (copies %v) and no incident was escalated for it", s.ID, s.Status, s.Host, copies[s.ID])
	}
}
