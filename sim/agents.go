package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// agentInterval is the agents' heartbeat interval, in virtual time: short enough to
// see a death in seconds, long enough to keep sweeps fast.
const agentInterval = 5 * time.Second

// heardFor: a host heard continuously this long on an agent path or through a peer
// cannot be fenced (invariant 5): three intervals for the detector to hear it, and
// the room of one late beat.
const heardFor = 4 * agentInterval

// agentQueue holds the beats that reached Vigil, until its engine drains them (the
// engine's AgentSource).
type agentQueue struct{ beats []model.AgentBeat }

// Drain implements engine.AgentSource.
func (q *agentQueue) Drain() []model.AgentBeat {
	out := q.beats
	q.beats = nil
	return out
}

type signaller interface {
	Signal(ctx context.Context) error
}

// reconcile is one reconcile of the engine: a poll (Tick), or in a quiet span with
// agents a reconcile on the signals alone (Signal).
func (w *world) reconcile(ctx context.Context) error {
	if w.signalOnly {
		w.stats.Signals++
		return w.eng.Signal(ctx)
	}
	w.stats.Ticks++
	return w.eng.Tick(ctx)
}

// pumpBeats runs the agents up to now and queues the beats that arrived for Vigil,
// stamped on its clock; while Vigil is down nobody listens and they are lost. A
// report with events is drained by this step's reconcile, at once.
func (w *world) pumpBeats() {
	if !w.agents {
		return
	}
	for _, b := range w.cloud.Beats() {
		if w.rep != nil {
			w.queueBeat(b)
			continue
		}
		if w.eng == nil {
			continue
		}
		b.At = w.vigilAt(b.At)
		w.beats.beats = append(w.beats.beats, b)
	}
}

// vigilAt is Vigil's clock reading at the cloud's time t.
func (w *world) vigilAt(t time.Time) time.Time {
	el := t.Sub(epoch0)
	return t.Add(w.offset + time.Duration(w.drift*float64(el)))
}

// watchHeard keeps, per host, since when it is heard in truth on an agent path or
// through a peer that reaches the controller (checked at each fence: invariant 5).
func (w *world) watchHeard() {
	for h := range w.powerLost {
		// Powered on again before Vigil saw it die, or Vigil stopped meanwhile: not
		// a detection to measure.
		if w.eng == nil || w.cloud.HostPower(h) == model.PowerOn {
			delete(w.powerLost, h)
		}
	}
	if !w.agents {
		return
	}
	for _, h := range w.hosts {
		heard := len(w.cloud.HeardOn(h)) > 0
		switch {
		case heard && w.heardSince[h].IsZero():
			w.heardSince[h] = w.now
		case !heard:
			delete(w.heardSince, h)
		}
	}
}

// loseHost is a real host death: it loses its power, and the time Vigil takes to open
// an incident for it is measured (only while Vigil runs when it happens).
func (w *world) loseHost(h string) {
	_ = w.cloud.KillHost(h)
	if w.eng != nil {
		w.powerLost[h] = w.now
	}
}

// onDetection: the first incident opened for a host that lost its power ends its
// detection time; a host powered on before that was not detected (not counted).
func (w *world) onDetection(e model.Event) {
	if len(w.powerLost) == 0 || e.Kind != "incident" || !strings.Contains(e.Message, " opened ") {
		return
	}
	h, ok := strings.CutPrefix(e.Subject, "host/")
	if !ok {
		return
	}
	if at, ok := w.powerLost[h]; ok {
		delete(w.powerLost, h)
		w.detect = append(w.detect, w.now.Sub(at))
		w.logf("detection of %s's power loss took %s", h, w.now.Sub(at).Round(time.Millisecond))
	}
}

// agentKinds are the fault kinds only a world with agents can show (without them, no
// one could see them: nothing is drawn).
var agentKinds = map[string]bool{
	"path-loss": true, "agent-death": true, "heartbeat-jitter": true,
	"guest-hang": true, "app-failure": true, "guest-panic": true,
}

// drawAgentFault fills in a fault of issue 14's kinds.
func drawAgentFault(f *fault, rng interface {
	IntN(int) int
}, cfg Config, hosts, protected []string) {
	switch f.kind {
	case "path-loss":
		f.target = hosts[rng.IntN(len(hosts))]
		f.dur = time.Duration(60+rng.IntN(840)) * time.Second
	case "agent-death":
		f.target = hosts[rng.IntN(len(hosts))]
		f.dur = time.Duration(120+rng.IntN(480)) * time.Second
	case "heartbeat-jitter":
		f.target = hosts[rng.IntN(len(hosts))]
		if rng.IntN(3) == 0 {
			f.target = fmt.Sprintf("seg%d", rng.IntN(max(1, cfg.Segments)))
		}
		f.dur = 10 * time.Minute
	case "guest-hang", "app-failure", "guest-panic", "qemu-crash":
		f.target = protected[rng.IntN(len(protected))]
	}
}

// beginAgent starts a fault of issue 14's kinds.
func (w *world) beginAgent(f fault) {
	c := w.cloud
	var err error
	switch f.kind {
	case "path-loss":
		nova := w.rng.IntN(2) == 0
		if nova {
			w.logf("Nova loses %s too (its compute reports over the management network)", f.target)
		}
		err = c.CutPath(f.target, model.PathManagement, true, nova)
	case "agent-death":
		err = c.KillAgent(f.target, true)
	case "heartbeat-jitter":
		for _, h := range w.hosts {
			if h == f.target || c.Truth(h).Segment == f.target {
				err = c.SetBeatNoise(h, w.now.Add(f.dur))
			}
		}
	case "guest-hang":
		err = c.HangGuest(f.target)
	case "app-failure":
		rebuild := w.rng.IntN(10) < 3
		if rebuild {
			w.logf("only a rebuild brings the app of %s back", f.target)
		}
		err = c.FailApp(f.target, rebuild)
	case "guest-panic":
		sync := time.Duration(1+w.rng.IntN(600)) * time.Second
		if w.rng.IntN(10) < 3 {
			sync = 0
		}
		w.logf("Nova's power sync sees it after %s (0: never)", sync)
		err = c.PanicGuest(f.target, sync)
	case "qemu-crash":
		sync := time.Duration(1+w.rng.IntN(600)) * time.Second
		w.logf("Nova's power sync sees it after %s", sync)
		err = c.CrashQemu(f.target, sync)
	}
	if err != nil {
		w.logf("fault %s %s does not apply: %v", f.kind, f.target, err)
	}
}

// endAgent ends a fault of issue 14's kinds.
func (w *world) endAgent(f fault) {
	c := w.cloud
	switch f.kind {
	case "path-loss":
		_ = c.CutPath(f.target, model.PathManagement, false, !w.othersCut(f.target))
		w.repairIfFenced(f.target)
	case "agent-death":
		_ = c.KillAgent(f.target, false)
	}
}

// othersCut: another fault keeps the host cut off Nova (its isolation, a partition
// of its segment, a lying BMC's cut-off): ending a path loss must not end those.
func (w *world) othersCut(h string) bool {
	for _, a := range w.active {
		switch a.kind {
		case "host-isolation", "maintenance", "bmc-lies-off", "bmc-miswired":
			if a.target == h {
				return true
			}
		case "segment-partition":
			if w.cloud.Truth(h).Segment == a.target {
				return true
			}
		}
	}
	return false
}
