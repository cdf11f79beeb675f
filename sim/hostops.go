package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// Issue 15: the operator's maintenance and host return go through Vigil's journaled
// operations (engine.SetMaintenance, engine.ReturnHost), as `vigil ctl host ...`
// does; the checkers hold Vigil to them (invariants 11 and 12).

// sleep is the engine's wait between a host return's attempts: the world's clock
// moves (the cloud's compute cleans up meanwhile).
func (w *world) sleep(_ context.Context, d time.Duration) error {
	w.now = w.now.Add(d)
	return nil
}

// setMaint is the operator's `vigil ctl host maintenance on|off`. With Vigil down
// the API does not answer: the operator tries again 30 s later.
func (w *world) setMaint(host string, on bool) {
	if on {
		w.maint[host] = true
	} else {
		delete(w.maint, host)
	}
	if w.eng == nil {
		kind := map[bool]string{true: "maintenance-on", false: "maintenance-off"}[on]
		w.logf("operator cannot reach Vigil to set maintenance %v on %s: tries again in 30 s", on, host)
		w.insert(fault{at: w.now.Add(30 * time.Second), kind: kind, target: host})
		return
	}
	if w.maint[host] != on {
		return // a later change of mind already won
	}
	res, err := w.engFor(host).SetMaintenance(context.Background(), host, on, "sim: operator")
	if err != nil {
		w.logf("operator: maintenance %v on %s refused: %v", on, host, err)
		return
	}
	w.logf("operator: %s", res.Message)
}

// askReturn is the operator's `vigil ctl host return`: asked again later (up to
// three times) while something is left; then the operator forces the service up
// by hand once the host runs.
func (w *world) askReturn(host string) {
	w.returnAsks[host]++
	if w.eng == nil {
		w.insert(fault{at: w.now.Add(60 * time.Second), kind: "return-host", target: host})
		return
	}
	r, err := w.engFor(host).ReturnHost(context.Background(), host)
	if err != nil {
		w.logf("operator asks Vigil to return %s: %v", host, err)
		w.engineErr(err)
		return
	}
	w.logf("operator asks Vigil to return %s: returned %v; done: %s; left: %s", host, r.Returned, strings.Join(r.Done, " | "), strings.Join(r.Left, " | "))
	if r.Returned {
		delete(w.returnAsks, host)
		return
	}
	if w.returnAsks[host] < 3 {
		w.insert(fault{at: w.now.Add(time.Duration(60+w.rng.IntN(120)) * time.Second), kind: "return-host", target: host})
		return
	}
	delete(w.returnAsks, host)
	if t := w.cloud.Truth(host); t.Alive && t.ForcedDown {
		w.logf("operator gives up on Vigil's return of %s and forces its service up by hand", host)
		_ = w.cloud.SetForcedDown(host, false)
	}
}

// engineErr handles an error of an engine call made by the operator as the run
// loop handles a reconcile's: a simulated crash restarts Vigil (or keeps it down).
func (w *world) engineErr(err error) {
	switch {
	case errors.Is(err, recover.ErrCrash) && w.crashDown > 0:
		w.down(w.crashDown, "crashed between a step's intent and its outcome")
		w.crashDown = 0
	case errors.Is(err, recover.ErrCrash):
		w.restart("crash between a step's intent and its outcome")
	}
}

func (w *world) beginHostOps(f fault) bool {
	c := w.cloud
	switch f.kind {
	case "maintenance-off":
		w.setMaint(f.target, false)
	case "restart-vigil":
		if w.eng != nil {
			w.restart("operator restart, the host in maintenance")
		}
	case "return-host":
		w.askReturn(f.target)
	case "maintenance-restart":
		// Through Vigil: journaled; Vigil restarts meanwhile and must still hold it.
		w.setMaint(f.target, true)
		w.insert(fault{at: w.now.Add(time.Duration(10+w.rng.IntN(110)) * time.Second), kind: "restart-vigil", target: f.target})
		if w.rng.IntN(2) == 0 { // and the host dies in maintenance: no fence, no evacuation
			w.insert(fault{at: w.now.Add(time.Duration(20+w.rng.IntN(180)) * time.Second), kind: "kill-host", target: f.target})
		}
	case "return-records-remain":
		w.loseHost(f.target)
		// Past the longest grace (5 min) and the evacuations that follow.
		w.insert(fault{at: w.now.Add(time.Duration(480+w.rng.IntN(300)) * time.Second), kind: "power-on-return", target: f.target})
	case "power-on-return":
		// Asked while still off: Vigil must say what is left (its BMC says off, or
		// its servers are not moved yet) and change nothing.
		if w.eng != nil {
			r, err := w.engFor(f.target).ReturnHost(context.Background(), f.target)
			if err != nil {
				w.logf("operator asks Vigil to return %s (still off): %v", f.target, err)
				w.engineErr(err)
				return true
			}
			w.logf("operator asks Vigil to return %s (still off): returned %v; left: %s", f.target, r.Returned, strings.Join(r.Left, " | "))
		}
		// Powered on: the compute cleans up its evacuation records 10-60 s after it
		// starts; Vigil is asked at once, and retries within its bound.
		delay := time.Duration(10+w.rng.IntN(50)) * time.Second
		c.SetCleanupDelay(delay)
		w.logf("operator powers %s on (its compute cleans up after %s) and asks Vigil to return it", f.target, delay)
		_ = c.PowerOnHost(f.target)
		c.SetCleanupDelay(3 * time.Second)
		w.insert(fault{at: w.now.Add(time.Duration(5+w.rng.IntN(10)) * time.Second), kind: "return-host", target: f.target})
	default:
		return false
	}
	return true
}

func (w *world) endHostOps(f fault) bool {
	switch f.kind {
	case "maintenance-restart":
		w.setMaint(f.target, false)
		w.repairIfFenced(f.target)
	default:
		return false
	}
	return true
}

// inMaintenance: Vigil's own view says the host is in maintenance (its verdict).
func (w *world) inMaintenance(host string) bool {
	return w.noteMaint()[host]
}

// noteMaint returns the hosts Vigil knows to be in maintenance, noting since when
// the world saw each so: an operator's (journaled), Nova's disabled service as
// Vigil listed it, or its verdict; not the verdict alone (a verdict that forgot
// the maintenance is the bug to catch).
func (w *world) noteMaint() map[string]bool {
	if w.eng == nil {
		return nil
	}
	out := map[string]bool{}
	for _, h := range w.eng.Hosts() {
		if h.Operator == nil && !h.Disabled && h.Verdict.Host != string(model.HostMaintenance) {
			delete(w.maintSeen, h.Name)
			continue
		}
		out[h.Name] = true
		if _, ok := w.maintSeen[h.Name]; !ok {
			w.maintSeen[h.Name] = w.now
		}
	}
	return out
}

// checkMaintFence (invariant 11): no fence of a host Vigil sees in maintenance.
func (d *driver) checkMaintFence(host string) {
	if d.w.inMaintenance(host) {
		d.w.violate(11, "fence of %s while Vigil sees it in maintenance (since %s)", host, fmtDur(d.w.maintSeen[host].Sub(epoch0)))
	}
}

// onFenceConfirmedOff records as a fence the one Vigil confirmed with nothing to
// power off (rule fence-confirmed-off: its trusted BMC, read with the observation,
// said off): it holds as much as one Vigil powered off itself, so an operator's
// maintenance after it does not strand the host's servers (sim seed 665 of issue
// 15: the checker knew only fences that called PowerOff, and took the evacuations
// that followed for ones from a host in maintenance).
func (w *world) onFenceConfirmedOff(e model.Event) {
	host, ok := strings.CutPrefix(e.Subject, model.KindHost+"/")
	if !ok || e.Kind != "step" || !strings.Contains(e.Message, "confirmed, nothing to do: fence-confirmed-off") {
		return
	}
	if w.cloud.Truth(host).Power == model.PowerOff {
		w.fencedAt[host] = w.now
	}
}

// checkMaintEvacuate (invariant 11): no evacuation from a host Vigil sees in
// maintenance, unless Vigil's fence of it held before the maintenance began (an
// operator's maintenance mid-recovery does not strand servers already fenced).
func (d *driver) checkMaintEvacuate(id, host string) {
	if !d.w.inMaintenance(host) {
		return
	}
	if at, ok := d.w.fencedAt[host]; ok && !at.After(d.w.maintSeen[host]) && d.cloud.Truth(host).Power == model.PowerOff {
		return
	}
	d.w.violate(11, "evacuation of %s from %s while Vigil sees that host in maintenance (since %s), not fenced before", id, host, fmtDur(d.w.maintSeen[host].Sub(epoch0)))
}

// checkReturn (invariant 12): Vigil forces a host's service up only when the host
// runs (powered on, its compute alive) and no protected server is placed on it.
func (d *driver) checkReturn(host string) {
	t := d.cloud.Truth(host)
	if t.Power != model.PowerOn || !t.Alive {
		d.w.violate(12, "force-up of %s while it is dead (power %s, compute alive %v)", host, t.Power, t.Alive)
	}
	var placed []string
	for _, s := range d.cloud.ServersOn(host) {
		if d.w.prot[s.ID] && s.Host == host {
			placed = append(placed, s.ID)
		}
	}
	if len(placed) > 0 {
		slices.Sort(placed)
		d.w.violate(12, "force-up of %s while protected servers are placed on it: %s", host, fmt.Sprint(placed))
	}
}
