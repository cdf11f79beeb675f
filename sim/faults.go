package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

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
}

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
func schedule(rng *rand.Rand, cfg Config, hosts, servers []string, prot map[string]bool) []fault {
	kinds := FaultKinds
	if len(cfg.Faults) > 0 {
		kinds = cfg.Faults
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
		case "host-isolation", "bmc-unreachable", "bmc-silent":
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
		w.stats.Faults++
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
		_ = c.KillHost(f.target)
	case "host-isolation":
		_ = c.IsolateHost(f.target, true)
	case "segment-partition":
		for _, h := range w.hosts {
			if c.Truth(h).Segment == f.target {
				_ = c.IsolateHost(h, true)
			}
		}
	case "bmc-unreachable":
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
		w.restart("operator restart")
	case "vigil-crash-step":
		w.crashArmed = []string{"after-intent", "after-action"}[w.rng.IntN(2)]
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
		w.stats.Faults-- // the follow-up is part of this fault
	case "maintenance-on":
		w.maint[f.target] = true
		w.eng.SetMaintenance(f.target, true)
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
				_ = c.IsolateHost(h, false)
				w.repairIfFenced(h)
			}
		}
	case "bmc-unreachable", "bmc-silent":
		_ = c.SetBMC(f.target, false, false)
	case "api-errors":
		c.SetErrorRate(0)
	case "api-slow":
		c.SetCallLatency(0)
	case "api-down":
		c.SetAPIDown(false)
	case "maintenance":
		_ = c.IsolateHost(f.target, false)
		w.repairIfFenced(f.target)
		delete(w.maint, f.target)
		w.eng.SetMaintenance(f.target, false)
	}
}

// repair is the operator returning a dead host: power on, service forced up.
func (w *world) repair(host string) {
	_ = w.cloud.PowerOnHost(host)
	_ = w.cloud.ForceDown(context.Background(), host, false)
}

// repairIfFenced: a host Vigil powered off while it was only cut off is returned by
// the operator once the network is back.
func (w *world) repairIfFenced(host string) {
	if w.cloud.Truth(host).Power == model.PowerOff {
		w.logf("operator powers %s back on after the fence", host)
		w.repair(host)
	}
}
