package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// portsDownBound: how long a server may run ACTIVE on another host than the one
// its ports were set down for, with its ports still down (counted only while the
// cloud can be seen), before that is a violation: Vigil must lift its own fence.
const portsDownBound = 5 * time.Minute

// fabricWatch is what the checks of the fabric fence remember.
type fabricWatch struct {
	downFor  map[string]string        // server -> the host its ports were last set down for
	cut      map[string][]string      // server -> the hosts it was evacuated from on the fabric proof
	seen     map[string]bool          // fabric copies already logged
	stuck    map[string]time.Duration // server -> time ACTIVE elsewhere with its ports down
	stuckMsg map[string]string
	last     time.Time
}

func (f *fabricWatch) init() {
	if f.downFor == nil {
		f.downFor, f.cut, f.seen = map[string]string{}, map[string][]string{}, map[string]bool{}
		f.stuck, f.stuckMsg = map[string]time.Duration{}, map[string]string{}
	}
}

var _ cloud.Fabric = (*driver)(nil)

// PortsDown checks invariant 5 (no false fencing, for the fabric: a server whose
// host is alive and reachable is never cut off) and the brake before passing on.
func (d *driver) PortsDown(ctx context.Context, id, host string) ([]string, error) {
	d.mutated("portsdown", id)
	d.w.fab.init()
	t := d.cloud.Truth(host)
	if t.Power == model.PowerOn && t.Reporting && d.w.now.Sub(t.Since) > 25*time.Second {
		d.w.violate(5, "ports of %s set down for host %s, alive and reachable since %s", id, host, fmtDur(t.Since.Sub(epoch0)))
	}
	if since, heard := d.w.heardSince[host]; t.Power == model.PowerOn && heard && d.w.now.Sub(since) > heardFor {
		d.w.violate(5, "ports of %s set down for host %s, heard on another path since %s", id, host, fmtDur(since.Sub(epoch0)))
	}
	d.checkBrake("ports-down "+id, t.Segment)
	ids, err := d.cloud.PortsDown(ctx, id, host)
	if err == nil {
		d.w.fab.downFor[id] = host
	}
	return ids, err
}

func (d *driver) PortsUp(ctx context.Context, id string) ([]string, error) {
	d.mutated("portsup", id)
	return d.cloud.PortsUp(ctx, id)
}

func (d *driver) CutVolumes(ctx context.Context, id, host string) ([]string, error) {
	d.mutated("cutvolumes", id)
	return d.cloud.CutVolumes(ctx, id, host)
}

func (d *driver) FabricState(ctx context.Context, id string) (cloud.FabricState, error) {
	return d.cloud.FabricState(ctx, id)
}

// fabricFenced (checked at the instant of an evacuation): under fence_proof
// bmc-or-fabric, an evacuation from a host whose power is not off is allowed only
// once its service is forced down, as Vigil saw it, and the server's old copy is
// cut off: every port down (or bound elsewhere) and no volume attached to the host.
// An evacuation under that proof that does not hold is a violation of invariant 2.
func (d *driver) fabricFenced(id, src string, pol model.Policy, t sim.HostTruth) bool {
	// A policy that accepts the forced-down service alone accepts the fabric fence
	// a fortiori (a host holding both kinds of servers is planned on the stricter).
	if pol.Proof() == model.FenceProofBMC || t.Power == model.PowerOff {
		return false
	}
	d.w.fab.init()
	st, _, ok := d.cloud.FabricTruth(id)
	if !ok {
		return false
	}
	if !t.ForcedDown {
		d.w.violate(2, "evacuation of %s from %s on the fabric proof before its force-down (power %s)", id, src, t.Power)
		return true
	}
	if !sim.CutOff(st, src) {
		d.w.violate(1, "evacuation of %s from %s (power %s) while its old copy can still talk or write there (ports %+v, attachments %+v)", id, src, t.Power, st.Ports, st.Attachments)
		return true
	}
	if !slices.Contains(d.w.fab.cut[id], src) {
		d.w.fab.cut[id] = append(d.w.fab.cut[id], src)
	}
	return true
}

// fabricCopy (invariant 1, for the fabric fence): a server that runs on several
// hosts is no violation only when every copy off the host Nova places it on is one
// left behind by an evacuation on the fabric proof and can neither talk nor write
// (also while the new copy is still spawning). Otherwise two copies can talk or
// write.
func (w *world) fabricCopy(id string, copies []string) bool {
	w.fab.init()
	cut := w.fab.cut[id]
	s, ok := w.cloud.Server(id)
	if len(cut) == 0 || !ok {
		return false
	}
	st, _, ok := w.cloud.FabricTruth(id)
	if !ok {
		return false
	}
	// A live migration's switch-over puts the one live copy on its destination while
	// Nova still places the server on the source: that copy is the server, not one
	// left behind (sim seed 1183 of issue 15: a server evacuated on the fabric proof,
	// its old copy cut off on an isolated host, was then drained off its new host).
	moving := w.cloud.MovingTo(id)
	for _, h := range copies {
		if h == s.Host || h == moving {
			continue
		}
		if !slices.Contains(cut, h) {
			return false // a copy no fabric fence was taken for
		}
		if !sim.CutOff(st, h) {
			w.violate(1, "server %s runs on %v: the copy on %s still has a port up or a volume attached there (ports %+v, attachments %+v)", id, copies, h, st.Ports, st.Attachments)
			return true
		}
	}
	if key := fmt.Sprint(id, copies); !w.fab.seen[key] {
		w.fab.seen[key] = true
		w.logf("server %s runs on %v: the copies off %s are cut off by the fabric fence (its ports bound to %s, no volume attached elsewhere)", id, copies, s.Host, s.Host)
	}
	return true
}

// checkPortsLeftDown (every tick): a server Vigil set ports down for, that runs
// ACTIVE on another host with its ports still down, is timed while the cloud can
// be seen; past portsDownBound it is a violation unless an incident escalated for
// it (checkPortsEnd).
func (w *world) checkPortsLeftDown() {
	w.fab.init()
	dt := w.now.Sub(w.fab.last)
	if w.fab.last.IsZero() {
		dt = 0
	}
	// Time while Vigil was down (no tick) or cut off does not count: nobody could lift.
	dt = min(dt, 10*time.Second)
	w.fab.last = w.now
	if c := w.eng.Cloud(); !c.Reachable {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(w.fab.downFor)) {
		from := w.fab.downFor[id]
		st, since, ok := w.cloud.FabricTruth(id)
		s, found := w.cloud.Server(id)
		if ok && found && (since.IsZero() || st.PortsUp()) {
			delete(w.fab.stuck, id) // lifted: a later cut counts afresh (one past the bound stays reported)
			continue
		}
		if !ok || !found || s.Host == from || s.Status != model.StatusActive || s.TaskState != "" {
			continue
		}
		w.fab.stuck[id] += dt
		if w.fab.stuck[id] > portsDownBound && w.fab.stuckMsg[id] == "" {
			w.fab.stuckMsg[id] = fmt.Sprintf("server %s runs ACTIVE on %s, its ports still admin down (set down at %s for host %s) after %s there",
				id, s.Host, fmtDur(since.Sub(epoch0)), from, w.fab.stuck[id].Round(time.Second))
		}
	}
}

// checkPortsEnd reports the servers left down too long whose failure no escalated
// incident answered (invariant 6: every failure gets an answer).
func (w *world) checkPortsEnd(escalated map[string]bool) {
	w.fab.init()
	for _, id := range slices.Sorted(maps.Keys(w.fab.stuckMsg)) {
		s, _ := w.cloud.Server(id)
		if escalated["server/"+id] || escalated["host/"+w.fab.downFor[id]] || escalated["host/"+s.Host] {
			continue
		}
		w.violate(6, "%s", w.fab.stuckMsg[id])
	}
}
