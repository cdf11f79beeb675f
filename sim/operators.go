package sim

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// followUp are the faults a fault schedules for itself: not counted as faults.
var followUp = map[string]bool{
	"maintenance-on": true, "host-returns": true, "force-up": true, "confirm-resize": true,
	"kill-host": true, "power-on-host": true, "api-down-for": true, "cut-off": true,
	"maintenance-off": true, "restart-vigil": true, "return-host": true, "power-on-return": true,
}

// beginNew starts the fault kinds of issue 13 and their follow-ups.
func (w *world) beginNew(f fault) {
	c := w.cloud
	switch f.kind {
	case "vigil-down":
		if w.eng != nil {
			w.down(f.dur, "stopped by an operator")
		}
	case "vigil-crash-down":
		// A host fails; Vigil will die in the middle of its fence or of an evacuation
		// from it, stay down, and the host comes back while it is (its network
		// returns, or an operator powers it on).
		w.crashArmed, w.crashOn, w.crashDown = []string{"after-intent", "after-action"}[w.rng.IntN(2)], model.ActFence, f.dur
		if w.rng.IntN(2) == 0 {
			_ = c.IsolateHost(f.target, true)
		} else {
			w.crashOn = model.ActEvacuate
			_ = c.KillHost(f.target)
		}
		w.insert(fault{at: w.now.Add(f.dur + time.Duration(5+w.rng.IntN(10))*time.Minute), kind: "host-returns", target: f.target})
	case "drain":
		w.drain(f.target)
	case "host-returns":
		t := c.Truth(f.target)
		switch {
		case t.Power == model.PowerOff:
			w.logf("operator powers %s on (its service left as it is)", f.target)
			_ = c.PowerOnHost(f.target)
		default:
			_ = c.IsolateHost(f.target, false)
		}
	case "answer-lost":
		c.LoseAnswers(f.target, 1+w.rng.IntN(3))
		// A failure that needs those actions follows.
		switch f.target {
		case "evacuate", "force-down", "power-off":
			h := w.hosts[w.rng.IntN(len(w.hosts))]
			if w.rng.IntN(2) == 0 {
				w.logf("then host %s loses power", h)
				_ = c.KillHost(h)
				w.insert(fault{at: w.now.Add(time.Duration(5+w.rng.IntN(15)) * time.Minute), kind: "power-on-host", target: h})
			} else {
				w.logf("then host %s is cut off", h)
				_ = c.IsolateHost(h, true)
				w.insert(fault{at: w.now.Add(time.Duration(60+w.rng.IntN(840)) * time.Second), kind: "host-returns", target: h})
			}
		default:
			if id := w.someProtected(); id != "" {
				w.logf("then server %s crashes", id)
				_ = c.Crash(id)
			}
		}
	case "power-on-host":
		w.repair(f.target)
	case "kill-host":
		w.logf("host %s loses power", f.target)
		w.loseHost(f.target)
		w.insert(fault{at: w.now.Add(time.Duration(5+w.rng.IntN(15)) * time.Minute), kind: "power-on-host", target: f.target})
	case "force-up":
		_ = c.SetForcedDown(f.target, false)
	case "live-migrate":
		src := c.ServerHost(f.target)
		dest := w.otherHost(src)
		sw := time.Duration(5+w.rng.IntN(15)) * time.Second
		if err := c.LiveMigrate(f.target, dest, sw); err != nil {
			w.logf("operator cannot live-migrate %s: %v", f.target, err)
			return
		}
		w.logf("operator live-migrates %s from %s to %s", f.target, src, dest)
		switch r := w.rng.IntN(10); {
		case r < 4: // dies after the switch-over, before the source finished the migration
			w.insert(fault{at: w.now.Add(sw + time.Second), kind: "kill-host", target: src})
		case r < 6: // dies before the switch-over
			w.insert(fault{at: w.now.Add(sw / 2), kind: "kill-host", target: src})
		}
	case "cold-migrate":
		src := c.ServerHost(f.target)
		dest := w.otherHost(src)
		if err := c.Migrate(f.target, dest, w.rng.IntN(2) == 0); err != nil {
			w.logf("operator cannot migrate %s: %v", f.target, err)
			return
		}
		w.logf("operator migrates %s from %s to %s", f.target, src, dest)
		confirm := time.Duration(10+w.rng.IntN(590)) * time.Second
		w.insert(fault{at: w.now.Add(confirm), kind: "confirm-resize", target: f.target})
		if w.rng.IntN(10) < 3 {
			w.insert(fault{at: w.now.Add(time.Duration(5+w.rng.IntN(int(confirm/time.Second))) * time.Second), kind: "kill-host", target: dest})
		}
	case "confirm-resize":
		if err := c.ConfirmResize(f.target); err != nil {
			w.logf("owner cannot confirm the resize of %s: %v", f.target, err)
		}
	case "owner-delete":
		_ = c.Delete(f.target)
	case "operator-force-down":
		_ = c.SetForcedDown(f.target, true)
	case "operator-disable":
		_ = c.SetDisabled(f.target, true)
	case "operator-power-on":
		w.powerOnNext = true
	case "bmc-lies-off":
		_ = c.SetBMCLiesOff(f.target, true)
		_ = c.SetBMC(f.target, false, true)
		// Half the time the host is later cut off while its BMC still lies. Later: a
		// BMC that starts saying "off" at the very instant its host stops reporting
		// looks exactly like a power loss to anyone who has only these two signals
		// (issue 14's host agent adds the paths that tell them apart); a standing lie
		// is seen while the host still reports, and Vigil must catch that one.
		w.lieEnd[f.target], w.lieSeen[f.target] = w.now.Add(f.dur), 0
		if delay := time.Duration(60+w.rng.IntN(240)) * time.Second; w.rng.IntN(2) == 0 && f.dur > delay+time.Minute {
			w.insert(fault{at: w.now.Add(delay), kind: "cut-off", target: f.target})
		}
	case "cut-off":
		// The lie is "standing" only if Vigil could see it: running, the compute API
		// answering, the host reporting. A lie told only while Vigil was down or blind
		// (seed 114: Vigil down, then the API down, the whole time before the cut-off)
		// is, at Vigil's first look, a silent host whose BMC says off: a power loss, to
		// anyone with only Nova's API and that BMC. The cut-off waits until the lie
		// was in view for lieInView, and does not happen if the lie ends first.
		if seen := w.lieSeen[f.target]; seen < lieInView {
			if next := w.now.Add(30 * time.Second); w.lieEnd[f.target].Sub(next) > time.Minute {
				w.insert(fault{at: next, kind: "cut-off", target: f.target})
			} else {
				w.logf("host %s is not cut off: its BMC's lie was in Vigil's view for only %s", f.target, seen)
			}
			return
		}
		w.logf("host %s is cut off", f.target)
		_ = c.IsolateHost(f.target, true)
	case "bmc-miswired":
		other := w.otherHost(f.target)
		w.logf("the fence entry of %s now reaches the BMC of %s", f.target, other)
		_ = c.SetFenceEntry(f.target, other)
		if w.rng.IntN(2) == 0 {
			_ = c.IsolateHost(f.target, true)
		} else {
			_ = c.KillHost(f.target)
		}
	case "controller-outage":
		c.StopHeartbeats(true)
	case "api-down-long":
		// The server fails for good; Vigil's first action on it gets no answer, and
		// from the next poll on the compute API is gone for longer than the deadline.
		c.BreakServer(f.target, true)
		_ = c.Crash(f.target)
		c.FailNext("reboot", cloud.ErrUnavailable)
		c.FailNext("hard-reboot", cloud.ErrUnavailable)
		w.insert(fault{at: w.now.Add(time.Second), kind: "api-down-for", target: f.target, dur: f.dur})
	case "api-down-for":
		c.SetAPIDown(true)
	case "second-vigil":
		// A second instance on the same journal, as `vigil serve` starts one: it opens
		// the store (a new handle, as another process would), claims, then fails
		// (its port is taken) and exits.
		db, err := sqlite.Open(context.Background(), w.dbPath)
		if err != nil {
			w.logf("second vigil refused: %s", w.sameEverywhere(err))
			return
		}
		defer db.Close()
		cfg := w.ecfg
		cfg.Store = db
		if _, err := engine.New(context.Background(), cfg); err != nil {
			w.logf("second vigil refused: %s", w.sameEverywhere(err))
			return
		}
		w.logf("second vigil started on the same journal, then exited (port in use)")
	default:
		if !w.beginHostOps(f) {
			w.beginAgent(f)
		}
	}
}

// sameEverywhere is an error's text without the run's temporary path, PID and
// wall-clock time: the same seed gives the same log.
func (w *world) sameEverywhere(err error) string {
	msg, _, _ := strings.Cut(strings.ReplaceAll(err.Error(), w.dbPath, "vigil.db"), ": PID ")
	return msg
}

func (w *world) endNew(f fault) {
	c := w.cloud
	switch f.kind {
	case "operator-force-down":
		_ = c.SetForcedDown(f.target, false)
	case "operator-disable":
		_ = c.SetDisabled(f.target, false)
	case "bmc-lies-off":
		delete(w.lieEnd, f.target)
		_ = c.SetBMCLiesOff(f.target, false)
		_ = c.SetBMC(f.target, false, false)
		_ = c.IsolateHost(f.target, false)
		w.repairIfFenced(f.target)
	case "bmc-miswired":
		// The entry stays wrong (nobody noticed); the host is repaired.
		t := c.Truth(f.target)
		_ = c.IsolateHost(f.target, false)
		if t.Power == model.PowerOff {
			w.repair(f.target)
		}
		w.repairIfFenced(t.BMC)
	case "controller-outage":
		c.StopHeartbeats(false)
	case "api-down-long":
		c.BreakServer(f.target, false)
	case "api-down-for":
		c.SetAPIDown(false)
	default:
		if !w.endHostOps(f) {
			w.endAgent(f)
		}
	}
}

// lieInView: how long a lying BMC's host must report while Vigil runs and sees the
// cloud before the world may cut it off (a BMC read every 30 s, then two heartbeats
// after its "off" answer; with room to spare).
const lieInView = time.Minute

// watchLies counts, for each host whose BMC lies, the time the lie was in Vigil's
// view over the last step of the clock (from t0): Vigil running, the compute API
// answering it, the host reporting.
func (w *world) watchLies(t0 time.Time) {
	if len(w.lieEnd) == 0 || w.eng == nil || !w.eng.Cloud().Reachable {
		return
	}
	for _, h := range slices.Sorted(maps.Keys(w.lieEnd)) {
		if w.cloud.Truth(h).Reporting {
			w.lieSeen[h] += w.now.Sub(t0)
		}
	}
}

// fairLies holds back a BMC's lie while its host is silent, until the lie was in
// Vigil's view for lieInView. A host that stops reporting (isolated, its segment
// cut off, every heartbeat stopped) while its BMC says "off" looks exactly like a
// power loss to anyone with only Nova's API and that BMC: seeds 2219 and 2880, a
// host isolated seconds before its BMC began to lie (2219: while Vigil was down),
// were "fenced" by the lie. The cut-off fault waits for the same reason; this holds
// for every other way a host goes silent. Held back, the BMC tells the truth (on),
// and still ignores power-off: a fence through it fails and is escalated. A lie
// that was in view stands whatever its host does: Vigil must have caught it.
// (Issue 14's host agent adds the paths that tell these apart.)
func (w *world) fairLies() {
	for _, h := range slices.Sorted(maps.Keys(w.lieEnd)) {
		lie := w.lieSeen[h] >= lieInView || w.cloud.Truth(h).Reporting
		_ = w.cloud.SetBMCLiesOff(h, lie)
	}
}

// otherHost is a host other than h, drawn from the seed.
func (w *world) otherHost(h string) string {
	others := slices.DeleteFunc(slices.Clone(w.hosts), func(x string) bool { return x == h })
	return others[w.rng.IntN(len(others))]
}

func (w *world) someProtected() string {
	var ids []string
	for id := range w.prot {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return ids[w.rng.IntN(len(ids))]
}

// fenced is told of every power off Vigil's fence really caused: an operator armed
// by operator-power-on powers that host on again soon after.
func (w *world) fenced(host string) {
	if !w.powerOnNext {
		return
	}
	w.powerOnNext = false
	at := w.now.Add(time.Duration(5+w.rng.IntN(175)) * time.Second)
	w.insert(fault{at: at, kind: "host-returns", target: host})
}
