package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// ClassicFaults are the fault kinds of the first simulation: a schedule of only
// these draws the same faults for a seed as it did then (the regression seeds that
// found bugs in that world replay them with the plain world, see Config.Settings).
var ClassicFaults = FaultKinds[:16:16]

// Fault kinds a schedule may hold.
var FaultKinds = []string{
	"server-crash",      // server ERROR
	"server-poweroff",   // SHUTOFF behind its owner's back
	"owner-stop",        // the owner stops a server: must be left alone
	"host-power-loss",   // host dead, repaired by an operator later
	"host-isolation",    // host alive, VMs running, unreachable from the controller
	"segment-partition", // the controller loses a whole segment
	"bmc-unreachable",   // a host's BMC does not answer
	"bmc-silent",        // a host's BMC accepts power-off and does nothing
	"api-errors",        // compute API answers 5xx at random
	"api-conflict",      // the next actions are refused with 409
	"api-slow",          // every compute API call takes seconds
	"api-down",          // the compute API does not answer at all
	"action-error",      // actions on a server are accepted but end in ERROR
	"vigil-restart",     // Vigil restarts between two ticks
	"vigil-crash-step",  // Vigil dies between a step's intent and its outcome
	"maintenance",       // an operator puts a failing host in maintenance mid-incident
	// Issue 13: what the first world could not produce.
	"vigil-down",          // Vigil is stopped 1-15 min (no tick), then starts on the same journal
	"vigil-crash-down",    // a host fails; Vigil dies mid-step of its fence/evacuation, stays down 1-15 min, and the host comes back meanwhile
	"answer-lost",         // the next actions of one kind are carried out but their answer is lost (a timeout); a failure that needs them follows
	"live-migrate",        // an operator live-migrates a server; sometimes its source host dies after the switch-over
	"cold-migrate",        // an operator migrates or resizes a server and confirms minutes later; sometimes the new host dies first
	"owner-delete",        // the owner deletes a protected server
	"operator-force-down", // an operator forces a healthy host's compute service down, later up
	"operator-disable",    // an operator disables a host's compute service for a while
	"operator-power-on",   // an operator powers on the next host Vigil fences, without forcing its service up
	"bmc-lies-off",        // a host's BMC reports power off and ignores power-off; the host is often cut off at once
	"bmc-miswired",        // a host's fence entry is changed to reach another host's BMC; the host then fails
	"controller-outage",   // every heartbeat stops at once (conductor or message queue down); hosts and VMs are fine
	"second-vigil",        // a second Vigil is started on the same journal and exits at once (its port is taken)
	"api-down-long",       // a server fails for good, the first action on it gets no answer, then the compute API is gone for 5-15 min, past the deadline
	// Issue 14: the signals beyond Nova's API, their traps and the failures only they
	// show. The first three are traps (no fence, no recovery may follow); all but
	// qemu-crash are drawn only in worlds with host agents (the "agents" setting).
	"path-loss",        // the controller loses one host's management path (Nova too, or not, by seed); its storage path and peers still hear it
	"agent-death",      // a host's agent process dies (host and guests fine) and restarts 2-10 min later with a new boot
	"heartbeat-jitter", // for 10 min, one host's (or a segment's) beats are late up to 5 intervals and 30 % are lost
	"guest-hang",       // a guest's kernel freezes: Nova ACTIVE, domain running, guest agent silent; only a hard reboot, rebuild or evacuation cures it
	"app-failure",      // an app in a guest fails: guest agent fine, app probe failing; a reboot cures it (by seed, only a rebuild)
	"guest-panic",      // the guest panics: crashed/panicked at once on its host; Nova's power sync shows SHUTOFF within 10 min, or never
	"qemu-crash",       // the domain's qemu dies: shutoff/crashed at once on its host; Nova says ACTIVE until its power sync (within 10 min)
	// Issue 15:
	"drain", // an operator drains a host: Vigil migrates its protected servers away (refused if it is not alive)
	// Issue 15: maintenance and host return as Vigil's journaled operations.
	"maintenance-restart",   // an operator puts a healthy host in maintenance through Vigil; Vigil restarts meanwhile; by seed the host then dies
	"return-records-remain", // a host dies; once recovered, the operator powers it on and asks Vigil to return it while its evacuation records remain
	// Issue 15: only the fabric fence can prove this host's copies harmless.
	"host-isolated-bmc-down", // a host is cut off on every path (alive, its copies run) and its BMC does not answer
}

// Issue13Faults are the fault kinds of issue 13's world: a seed restricted to them
// (with Issue13Settings) replays as it did before issue 14's kinds came.
var Issue13Faults = FaultKinds[:30:30]

type fault struct {
	at     time.Time
	kind   string
	target string        // host or server
	dur    time.Duration // how long it lasts (0: instant)
}

type activeFault struct {
	fault
	until time.Time
}

// schedule draws a fault schedule from the seed: a handful of faults, at random
// times, in the part of the run before Settle.
func schedule(rng *rand.Rand, cfg Config, hosts, servers []string, prot map[string]bool, agents bool) []fault {
	kinds := FaultKinds
	if len(cfg.Faults) > 0 {
		kinds = cfg.Faults
	}
	// The replica mode's kinds are drawn from a stream of their own (replicaSchedule).
	kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return replicaKinds[k] })
	if len(kinds) == 0 {
		return nil
	}
	if !agents {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return agentKinds[k] })
		if len(kinds) == 0 {
			return nil
		}
	}
	var protected []string
	for _, id := range servers {
		if prot[id] {
			protected = append(protected, id)
		}
	}
	window := cfg.Until - cfg.Settle
	n := 2 + rng.IntN(8)
	var out []fault
	for range n {
		f := fault{at: epoch0.Add(time.Minute + time.Duration(rng.Int64N(int64(window-time.Minute)))), kind: kinds[rng.IntN(len(kinds))]}
		switch f.kind {
		case "server-crash", "server-poweroff", "owner-stop", "action-error":
			f.target = protected[rng.IntN(len(protected))]
			if f.kind == "action-error" {
				f.dur = time.Duration(30+rng.IntN(600)) * time.Second
			}
		case "host-power-loss":
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = time.Duration(5+rng.IntN(20)) * time.Minute // until the operator repairs it
		case "host-isolation", "bmc-unreachable", "bmc-silent", "host-isolated-bmc-down":
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = time.Duration(5+rng.IntN(900)) * time.Second
		case "maintenance": // longer than the delay before the operator acts (begin)
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = time.Duration(120+rng.IntN(900)) * time.Second
		case "segment-partition":
			f.target = fmt.Sprintf("seg%d", rng.IntN(max(1, cfg.Segments)))
			f.dur = time.Duration(30+rng.IntN(600)) * time.Second
		case "api-errors", "api-slow", "api-down":
			f.dur = time.Duration(5+rng.IntN(300)) * time.Second
		case "api-conflict":
			f.target = []string{"reboot", "hard-reboot", "rebuild", "evacuate", "force-down"}[rng.IntN(5)]
		case "vigil-down", "vigil-crash-down":
			f.dur = time.Duration(60+rng.IntN(840)) * time.Second
			f.target = hosts[rng.IntN(len(hosts))]
		case "answer-lost":
			f.target = []string{"evacuate", "reboot", "hard-reboot", "rebuild", "force-down", "power-off"}[rng.IntN(6)]
		case "drain":
			f.target = drainTarget(rng, hosts)
		case "live-migrate", "cold-migrate", "owner-delete":
			f.target = protected[rng.IntN(len(protected))]
		case "operator-force-down", "operator-disable", "bmc-lies-off", "bmc-miswired":
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = time.Duration(30+rng.IntN(600)) * time.Second
		case "controller-outage":
			f.dur = time.Duration(30+rng.IntN(570)) * time.Second
		case "maintenance-restart":
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = time.Duration(300+rng.IntN(600)) * time.Second
		case "api-down-long":
			f.target = protected[rng.IntN(len(protected))]
			f.dur = time.Duration(300+rng.IntN(600)) * time.Second
		case "return-records-remain":
			f.target = hosts[rng.IntN(len(hosts))]
			f.dur = 0
		default:
			drawAgentFault(&f, rng, cfg, hosts, protected)
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// applyFaults starts the faults that are due and ends those whose time is up.
func (w *world) applyFaults() {
	for len(w.active) > 0 {
		i := slices.IndexFunc(w.active, func(a activeFault) bool { return !w.now.Before(a.until) })
		if i < 0 {
			break
		}
		a := w.active[i]
		w.active = slices.Delete(w.active, i, i+1)
		w.end(a.fault)
	}
	for len(w.sched) > 0 && !w.now.Before(w.sched[0].at) {
		f := w.sched[0]
		w.sched = w.sched[1:]
		if !followUp[f.kind] {
			w.stats.Faults++
			w.kinds[f.kind]++
		}
		w.lastChange = w.now
		w.begin(f)
		if f.dur > 0 {
			w.active = append(w.active, activeFault{fault: f, until: w.now.Add(f.dur)})
		}
	}
}

func (w *world) begin(f fault) {
	c := w.cloud
	w.logf("FAULT %s %s for %s", f.kind, f.target, f.dur)
	if w.beginReplica(f) {
		return
	}
	switch f.kind {
	case "server-crash":
		_ = c.Crash(f.target)
	case "server-poweroff":
		_ = c.PowerOffBehindBack(f.target)
	case "owner-stop":
		_ = c.Stop(f.target)
	case "action-error":
		c.BreakServer(f.target, true)
		_ = c.Crash(f.target)
	case "host-power-loss":
		w.loseHost(f.target)
	case "host-isolation":
		_ = c.IsolateHost(f.target, true)
	case "segment-partition":
		// The controller is cut from the segment; its hosts still hear each other.
		for _, h := range w.hosts {
			if c.Truth(h).Segment == f.target {
				_ = c.CutFromController(h, true)
			}
		}
	case "bmc-unreachable":
		_ = c.SetBMC(f.target, true, false)
	case "host-isolated-bmc-down":
		_ = c.IsolateHost(f.target, true)
		_ = c.SetBMC(f.target, true, false)
	case "bmc-silent":
		_ = c.SetBMC(f.target, false, true)
	case "api-errors":
		c.SetErrorRate(0.3)
	case "api-slow":
		c.SetCallLatency(3 * time.Second)
	case "api-down":
		c.SetAPIDown(true)
	case "api-conflict":
		c.FailNext(f.target, cloud.ErrConflict, cloud.ErrConflict)
	case "vigil-restart":
		if w.eng != nil {
			w.restart("operator restart")
		}
	case "vigil-crash-step":
		w.crashArmed, w.crashOn, w.crashDown = []string{"after-intent", "after-action"}[w.rng.IntN(2)], "", 0
	case "maintenance":
		// The host fails (cut off); some time later, while Vigil is handling it, an
		// operator puts it in maintenance.
		_ = c.IsolateHost(f.target, true)
		at := w.now.Add(time.Duration(5+w.rng.IntN(90)) * time.Second)
		i := 0
		for i < len(w.sched) && !w.sched[i].at.After(at) {
			i++
		}
		w.sched = slices.Insert(w.sched, i, fault{at: at, kind: "maintenance-on", target: f.target})
	case "maintenance-on":
		w.setMaint(f.target, true)
	default:
		w.beginNew(f)
	}
}

func (w *world) end(f fault) {
	c := w.cloud
	w.logf("END %s %s", f.kind, f.target)
	switch f.kind {
	case "action-error":
		c.BreakServer(f.target, false)
	case "host-power-loss":
		w.repair(f.target)
	case "host-isolation":
		_ = c.IsolateHost(f.target, false)
		w.repairIfFenced(f.target)
	case "segment-partition":
		for _, h := range w.hosts {
			if c.Truth(h).Segment == f.target {
				_ = c.CutFromController(h, false)
				w.repairIfFenced(h)
			}
		}
	case "bmc-unreachable", "bmc-silent":
		_ = c.SetBMC(f.target, false, false)
	case "host-isolated-bmc-down":
		_ = c.IsolateHost(f.target, false)
		_ = c.SetBMC(f.target, false, false)
		w.repairIfFenced(f.target)
	case "api-errors":
		c.SetErrorRate(0)
	case "api-slow":
		c.SetCallLatency(0)
	case "api-down":
		c.SetAPIDown(false)
	case "maintenance":
		_ = c.IsolateHost(f.target, false)
		w.repairIfFenced(f.target)
		w.setMaint(f.target, false)
	default:
		w.endNew(f)
	}
}

// repair is the operator returning a dead host: power on, and its service forced
// up by hand at once, or minutes later through Vigil's host return (which forces
// it up only if Vigil forced it down, says what is left, and is asked again), or
// never (the operator forgets: it stays as Vigil left it).
func (w *world) repair(host string) {
	_ = w.cloud.PowerOnHost(host)
	switch r := w.rng.IntN(10); {
	case r < 5:
		_ = w.cloud.SetForcedDown(host, false)
	case r < 8:
		w.insert(fault{at: w.now.Add(time.Duration(60+w.rng.IntN(240)) * time.Second), kind: "return-host", target: host})
	default:
		w.logf("operator powers %s on and leaves its service as it is", host)
	}
}

// repairIfFenced: a host Vigil powered off while it was only cut off is returned by
// the operator once the network is back.
func (w *world) repairIfFenced(host string) {
	if w.cloud.Truth(host).Power == model.PowerOff {
		w.logf("operator powers %s back on after the fence", host)
		w.repair(host)
	}
}
