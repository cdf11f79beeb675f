package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/lead"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// ErrStandby: this replica leads no shard the request concerns; the error names
// the leader (see Engine.Standby).
var ErrStandby = errors.New("standby: another Vigil replica leads")

// Leading is this replica's share of the leadership, for the API and /readyz.
type Leading struct {
	Replica string `json:"replica"`
	// Leads: the shards this replica leads now, with their epochs.
	Leads map[string]int64 `json:"leads"`
	// Leases: every shard's lease as last read (who leads each).
	Leases []store.Lease `json:"leases"`
	Error  string        `json:"error,omitempty"` // the store's last error reading or renewing them
}

// Keeper is this replica's lease keeper.
func (e *Engine) Keeper() *lead.Keeper { return e.keeper }

// Leadership says which shards this replica leads, and who leads the others.
func (e *Engine) Leadership() Leading {
	out := Leading{Replica: e.keeper.ID, Leads: e.keeper.Led(), Leases: e.keeper.Leases()}
	if err := e.keeper.Err(); err != nil {
		out.Error = err.Error()
	}
	return out
}

// Leads reports whether this replica leads any shard now.
func (e *Engine) Leads() bool { return len(e.keeper.Led()) > 0 }

// Standby returns nil if this replica leads shard now ("" any), else an ErrStandby
// naming the shard's leader and its address: an operator's change goes there.
func (e *Engine) Standby(shard string) error {
	led := e.keeper.Led()
	if shard == "" && len(led) > 0 || led[shard] != 0 {
		return nil
	}
	var who []string
	for _, l := range e.keeper.Leases() {
		if (shard == "" || l.Shard == shard) && l.Holder != "" && l.Holder != e.keeper.ID {
			s := fmt.Sprintf("shard %s: %s", l.Shard, l.Holder)
			if l.Addr != "" {
				s += " (API on " + l.Addr + ")"
			}
			who = append(who, s)
		}
	}
	if len(who) == 0 {
		return fmt.Errorf("%w: no replica leads %s yet (a standby takes a lease over once its leader stopped renewing it for %s)",
			ErrStandby, cmpOr(shard, "any shard"), e.keeper.Timing.TTL)
	}
	return fmt.Errorf("%w: %s", ErrStandby, strings.Join(who, "; "))
}

// shardOfHost is the shard of a host's segment (the catch-all for a host not seen).
func (e *Engine) shardOfHost(host string) string {
	return e.cfg.Sharding.Of(e.det.View().Hosts[host].Segment)
}

// shardOf is the shard whose leader answers a subject: a host's, a server's host's.
// Under e.mu.
func (e *Engine) shardOf(s model.Subject) string {
	switch s.Kind {
	case model.KindHost, model.KindDrain, model.KindAgent:
		return e.shardOfHost(s.ID)
	case model.KindServer:
		return e.shardOfHost(e.det.View().Servers[s.ID].Host)
	}
	return ""
}

// lead renews the leases when due and follows a change of leadership: the
// incidents of a shard taken over are loaded (claimed for this replica's epoch by
// the takeover), those of a shard lost are dropped unfinished (its new leader
// settles their steps). Called at the start of every reconcile.
func (e *Engine) lead(ctx context.Context) error {
	if err := e.keeper.TickIfDue(ctx); err != nil && ctx.Err() == nil {
		e.leaseErr(ctx, err)
	}
	led := e.keeper.Led()
	e.mu.RLock()
	same := maps.Equal(led, e.loaded)
	e.mu.RUnlock()
	if same {
		return nil
	}
	return e.reload(ctx, led)
}

// leaseErr journals a store error of the lease keeper once (the leader keeps
// acting until its last renewal is too old).
func (e *Engine) leaseErr(ctx context.Context, err error) {
	msg := err.Error()
	if msg == e.leaseMsg {
		return
	}
	e.leaseMsg = msg
	_ = e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "lease", Subject: "vigil/" + e.keeper.ID,
		Message: "cannot renew or read the leases: " + msg + fmt.Sprintf("; this replica stops acting on a shard %s after its last renewal", e.keeper.Timing.Valid())})
}

// reload makes the journal's state of the shards led the engine's.
func (e *Engine) reload(ctx context.Context, led map[string]int64) error {
	open, err := e.cfg.Store.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	lastClosed, err := e.cfg.Store.LastClosed(ctx)
	if err != nil {
		return err
	}
	clusters, err := e.cfg.Store.Clusters(ctx)
	if err != nil {
		return err
	}
	doubts, err := e.cfg.Store.FenceDoubts(ctx)
	if err != nil {
		return err
	}
	mine, others := splitByShard(open, led)
	now := e.cfg.Now()
	e.mu.RLock()
	was := e.loaded
	e.mu.RUnlock()
	for i := range mine {
		if was[mine[i].Shard] != led[mine[i].Shard] {
			// A shard just taken (or this replica's first load): its steps so far
			// were written on another clock (model.Incident.ForeignTime).
			for _, st := range mine[i].Steps {
				mine[i].Foreign = max(mine[i].Foreign, st.Seq)
			}
		}
	}
	e.mu.Lock()
	e.loaded = led
	e.open, e.others, e.lastClosed, e.clusters = mine, others, lastClosed, clusters
	e.protect()
	e.det.SetFenceDoubts(doubts)
	maps.Copy(e.fenceDoubt, doubts)
	e.mu.Unlock()
	if err := e.loadHostOps(ctx); err != nil {
		return err
	}
	var evs []model.Event
	for _, s := range slices.Sorted(maps.Keys(led)) {
		if was[s] != led[s] {
			n := 0
			for _, in := range mine {
				if in.Shard == s {
					n++
				}
			}
			evs = append(evs, model.Event{At: now, Kind: "lease", Subject: "shard/" + s,
				Message: fmt.Sprintf("replica %s leads shard %s (epoch %d): %d open incidents taken over; their steps in flight are settled by reading the cloud", e.keeper.ID, s, led[s], n)})
		}
	}
	for _, s := range slices.Sorted(maps.Keys(was)) {
		if led[s] == 0 && e.cfg.OnEvent != nil {
			// Not journaled: this replica may write no more for that shard.
			e.cfg.OnEvent(model.Event{At: now, Kind: "lease", Subject: "shard/" + s,
				Message: fmt.Sprintf("replica %s no longer leads shard %s (epoch %d): it stands by", e.keeper.ID, s, was[s])})
		}
	}
	if err := e.emit(ctx, evs...); err != nil {
		return err
	}
	e.mu.RLock()
	listed := !e.det.View().LastSeen.IsZero()
	e.mu.RUnlock()
	if len(evs) > 0 && listed {
		// A shard taken: the clusters just read are what the last leader stored,
		// and this replica's own refreshes as a standby were never stored (it may
		// not write). Resolve the sources now, before planning on stale members: a
		// server that left a cluster's source meanwhile would be recovered (sim
		// seed 257, two replicas). Its errors show on the clusters' sources, as
		// the refresh loop's do. Not before the first listing (a start): the
		// sources read from the servers' metadata would be found empty, and the
		// refresh loop resolves them once the servers are seen (the scale bench's
		// crashes went unrecovered for a minute).
		_ = e.RefreshClusters(ctx)
	}
	return nil
}

// splitByShard: the open incidents of the shards led, and the others'.
func splitByShard(open []model.Incident, led map[string]int64) (mine, others []model.Incident) {
	for _, in := range open {
		if in.Shard == "" {
			in.Shard = model.DefaultShard
		}
		if ep, ok := led[in.Shard]; ok && in.Epoch == ep {
			mine = append(mine, in)
		} else {
			others = append(others, in)
		}
	}
	return mine, others
}

// epochOf is the epoch under which this replica writes for an incident's shard (0:
// none; the store refuses the write as stale).
func (e *Engine) epochOf(shard string) int64 {
	if shard == "" {
		shard = model.DefaultShard
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.loaded[shard]
}

// epochOfIncident is epochOf the shard of an open incident.
func (e *Engine) epochOfIncident(id int64) int64 {
	e.mu.RLock()
	shard, _ := e.incidentShardLocked(id)
	e.mu.RUnlock()
	return e.epochOf(shard)
}

// incidentShardLocked is the shard of an open incident (model.DefaultShard for
// one stored without), and whether it is open here. Under e.mu.
func (e *Engine) incidentShardLocked(id int64) (string, bool) {
	for _, in := range e.open {
		if in.ID == id {
			return cmpOr(in.Shard, model.DefaultShard), true
		}
	}
	return model.DefaultShard, false
}

// guard is asked right before each action: this replica must still lead the
// step's shard, by its own clock (the last renewal is recent enough: not after a
// pause) and by the store (no one took it over).
func (e *Engine) guard(ctx context.Context, st model.Step) error {
	e.mu.RLock()
	shard, _ := e.incidentShardLocked(st.Incident)
	e.mu.RUnlock()
	return e.guardShard(ctx, shard)
}

// guardShard is guard for any action (a step of the executor, a host return's
// force-up): the lease of the shard is renewed if due (the loop may have been busy
// for a while: what counts is whether the store still says this replica leads),
// then checked.
func (e *Engine) guardShard(ctx context.Context, shard string) error {
	if err := e.keeper.TickIfDue(ctx); err != nil && ctx.Err() == nil {
		e.leaseErr(ctx, err)
	}
	return e.checkShard(ctx, shard)
}

// checkShard: this replica leads shard by its own clock (under the epoch its
// journal state was loaded for) and by the store.
func (e *Engine) checkShard(ctx context.Context, shard string) error {
	shard = cmpOr(shard, model.DefaultShard)
	e.mu.RLock()
	loaded := e.loaded[shard]
	e.mu.RUnlock()
	ep := e.keeper.Epoch(shard)
	if ep == 0 || ep != loaded {
		return fmt.Errorf("lease of shard %s lapsed or lost (this replica's last renewal is older than %s): %w",
			shard, e.keeper.Timing.Valid(), store.ErrStale)
	}
	return e.cfg.Store.CheckLease(ctx, ep)
}

// writable reports whether this replica may journal for a subject now: it leads
// its shard (a subject of no shard: any shard), under the epoch its journal state
// was loaded for and by its own clock (an old leader resumed after a pause writes
// nothing more, not even what it concluded before the pause).
func (e *Engine) writable(ev model.Event) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.writableLocked(ev)
}

func (e *Engine) writableLocked(ev model.Event) bool {
	if ev.Incident != 0 {
		if shard, open := e.incidentShardLocked(ev.Incident); open {
			return e.leadsLocked(shard)
		}
	}
	kind, id, ok := strings.Cut(ev.Subject, "/")
	if ok {
		switch kind {
		// An agent's verdict is its host's shard's too: every replica hears every
		// agent, and only the host's leader journals what it concluded.
		case model.KindHost, model.KindServer, model.KindDrain, model.KindAgent:
			return e.leadsLocked(e.shardOf(model.Subject{Kind: kind, ID: id}))
		}
	}
	for s := range e.loaded {
		if e.leadsLocked(s) {
			return true
		}
	}
	return false
}

// leadsLocked: this replica leads shard now, under the epoch its journal state was
// loaded for, by its own clock. Under e.mu.
func (e *Engine) leadsLocked(shard string) bool {
	ep := e.loaded[shard]
	return ep != 0 && e.keeper.Epoch(shard) == ep
}

// ledSetLocked names the shards whose journal this engine holds (the planner opens
// incidents for those only). Under e.mu.
func (e *Engine) ledSetLocked() map[string]bool {
	out := make(map[string]bool, len(e.loaded))
	for s := range e.loaded {
		out[s] = true
	}
	return out
}

// refreshOthers reads the open incidents of the shards other replicas lead, after
// a listing of the cloud: their steps say which hosts Vigil forced down (a
// force-down's bump of Nova's updated_at is no heartbeat), and the API shows them.
// The leader journals a force-down's intent before the call, so a bump seen in the
// listing just made is in the journal read now. A replica that leads every shard
// has none to read.
func (e *Engine) refreshOthers(ctx context.Context) {
	e.mu.RLock()
	all := len(e.loaded) >= len(e.cfg.Sharding.Shards)
	e.mu.RUnlock()
	if all {
		return
	}
	open, err := e.cfg.Store.OpenIncidents(ctx)
	if err != nil {
		return // the last read stands; the next listing reads again
	}
	e.mu.Lock()
	_, e.others = splitByShard(open, e.loaded)
	e.mu.Unlock()
}
