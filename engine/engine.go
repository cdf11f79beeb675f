package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/detect"
	"github.com/vigil-ha/vigil/lead"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/plan"
	"github.com/vigil-ha/vigil/recover"
	"github.com/vigil-ha/vigil/source/poll"
	"github.com/vigil-ha/vigil/store"
)

// Config wires an engine.
type Config struct {
	Compute cloud.Compute
	Fencer  cloud.Fencer // nil: no host has a fence device
	// Migrator moves servers off live hosts (nil: the Compute's own, if it has one).
	Migrator cloud.Migrator
	// Fabric cuts ports and volume attachments (the fabric fence); nil: none.
	Fabric   cloud.Fabric
	Store    store.Store
	Policies map[string]model.Policy // "default" is added when missing
	Limits   model.Limits
	Now      func() time.Time
	// FullEvery: a full listing repairs drift from incremental (changes-since) polls.
	FullEvery time.Duration
	// Hook lets tests stop the executor at exact points.
	Hook recover.Hook
	// ServiceDownTime is the cloud's service_down_time (Nova's default when zero):
	// how long a forced-down compute's heartbeat may be silent before it is.
	ServiceDownTime time.Duration
	// PowerEvery: every fenceable host's BMC power is read this often (default 30 s);
	// the BMCs of hosts being fenced at every reconcile.
	PowerEvery time.Duration
	// BMCTimeout bounds each BMC read (default Limits.BMCTimeout, else
	// DefaultBMCTimeout); BMCReads bounds
	// the reads in flight at once (DefaultBMCReads); a reconcile waits BMCWait at
	// most for them (DefaultBMCWait; <0: for every read), a later answer is folded
	// into the next reconcile (engine/bmcreads.go).
	BMCTimeout, BMCWait time.Duration
	BMCReads            int
	// OnEvent receives every journaled event (the demo's timeline), in order.
	OnEvent func(model.Event)
	// Agents is where host agents' heartbeats arrive (source/agent's receiver, the
	// simulation's agents); nil: no host has an agent. It is drained at every
	// reconcile.
	Agents AgentSource
	// SignalEvery: how often Run reconciles on the signals alone (Signal) between
	// polls, to see a silence as it happens; default 1 s when Agents is set, never
	// otherwise.
	SignalEvery time.Duration
	// AgentInterval is the agents' heartbeat interval (default SignalEvery): after a
	// start, a host whose agent was not heard yet is not judged failed for three of
	// them (detect's AgentWarmup).
	AgentInterval time.Duration
	// Sabotage: deliberate bugs, for the simulation's checker tests only.
	Sabotage model.Sabotage
	// DisabledNotMaintenance: Nova's disabled compute service is NOT taken as
	// maintenance (by default it is: cloud.disabled_is_maintenance).
	DisabledNotMaintenance bool
	// ReturnWait bounds how long a host return waits for the host's compute to
	// report and for Nova to accept the force-up (default 60 s); Sleep waits
	// between its attempts (a timer when nil; the simulation's virtual clock).
	ReturnWait time.Duration
	Sleep      func(ctx context.Context, d time.Duration) error
	// RefreshEvery: how often Run resolves the clusters' sources (groups.go;
	// default DefaultRefreshEvery).
	RefreshEvery time.Duration
	// Sharding maps segments to shards (default: one shard of every segment); each
	// shard is led by one replica at a time (lead.Keeper). Keeper is this replica's
	// (nil: one over the Sharding's shards, named ReplicaID, with LeaseTTL, on Now).
	Sharding  model.Sharding
	Keeper    *lead.Keeper
	ReplicaID string
	LeaseTTL  time.Duration
}

// AgentSource holds the heartbeats host agents sent since it was last drained.
type AgentSource interface {
	Drain() []model.AgentBeat
}

// waker is an AgentSource that says when a beat must be looked at now (it carries a
// lifecycle event: a crash is judged in milliseconds, not at the next tick).
type waker interface {
	Wake() <-chan struct{}
}

// Engine is one owner of Vigil's recoveries.
type Engine struct {
	cfg    Config
	keeper *lead.Keeper
	exec   *recover.Executor

	run sync.Mutex // one reconcile at a time

	mu         sync.RWMutex // guards everything below
	det        *detect.Detector
	clusters   []model.Cluster
	open       []model.Incident
	lastClosed map[model.Subject]model.Incident
	poller     *poll.Poller
	stats      Stats
	// BMC reads (readBMCs): when every host's power and identity were last read, and
	// the identities known.
	lastPowerAll, lastIdentAll time.Time
	identities                 map[string]string
	bmc                        *bmcReader
	identRecorded              map[string]bool   // hosts whose reference identity is journaled
	unconfirmed                map[string]string // hosts whose BMC identity could not be read last time, why
	fenceDoubt                 map[string]string // doubts already journaled
	settleErr                  string            // the last error settling steps, journaled once
	// actions counts the steps handed to the executor (under run): Signal goes on
	// reconciling while a host's recovery moves.
	actions int
	// maint: the hosts an operator put in maintenance (journaled); returned: when
	// Vigil last forced each host's service up (host return, journaled); returning
	// serializes host returns.
	maint     map[string]model.Maintenance
	returned  map[string]time.Time
	returning sync.Mutex
	// lastRefresh: when the clusters' sources were last resolved (groups.go).
	lastRefresh time.Time
	// edit serializes the operators' edits of clusters (create, patch, delete).
	edit sync.Mutex
	// groups are the cloud's server groups as last listed (placement binds on them).
	groups []model.ServerGroup
	// loaded: the shards whose journal this engine holds in open (lead.go), with
	// the epochs it writes under; others: the open incidents of the shards other
	// replicas lead (shown, never acted on); leaseMsg: the lease error journaled last.
	loaded   map[string]int64
	others   []model.Incident
	leaseMsg string
}

// Stats counts what the engine did.
type Stats struct {
	Ticks      int `json:"ticks"`
	PollErrors int `json:"poll_errors"`
}

// New claims the store's open recoveries, loads the clusters and resumes any step
// a previous owner left in flight.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Policies == nil {
		cfg.Policies = map[string]model.Policy{}
	}
	if _, ok := cfg.Policies["default"]; !ok {
		cfg.Policies["default"] = model.DefaultPolicy()
	}
	if cfg.Limits.MaxConcurrent == 0 {
		cfg.Limits = model.DefaultLimits()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FullEvery == 0 {
		cfg.FullEvery = time.Minute
	}
	if cfg.PowerEvery == 0 {
		cfg.PowerEvery = 30 * time.Second
	}
	cfg.BMCTimeout = cmp.Or(cfg.BMCTimeout, cfg.Limits.BMCTimeout, DefaultBMCTimeout)
	cfg.BMCWait = cmp.Or(cfg.BMCWait, DefaultBMCWait)
	cfg.BMCReads = cmp.Or(cfg.BMCReads, DefaultBMCReads)
	if cfg.SignalEvery == 0 && cfg.Agents != nil {
		cfg.SignalEvery = time.Second
	}
	if len(cfg.Sharding.Shards) == 0 {
		cfg.Sharding = model.DefaultSharding()
	}
	keeper := cfg.Keeper
	if keeper == nil {
		keeper = lead.New(cfg.Store, cfg.ReplicaID, cfg.Sharding.Names(), model.LeaseTiming{TTL: cfg.LeaseTTL}, cfg.Now)
	}
	e := &Engine{cfg: cfg, keeper: keeper, lastClosed: map[model.Subject]model.Incident{},
		poller: &poll.Poller{Lister: cfg.Compute, FullEvery: cfg.FullEvery}, bmc: newBMCReader(cfg.BMCReads),
		identities: map[string]string{}, identRecorded: map[string]bool{}, fenceDoubt: map[string]string{}, unconfirmed: map[string]string{}}
	dcfg := detect.Config{HostDownGrace: cfg.Policies["default"].HostDownGrace, ServiceDownTime: cfg.ServiceDownTime,
		DisabledIsMaintenance: !cfg.DisabledNotMaintenance}
	if cfg.Agents != nil {
		if cfg.AgentInterval <= 0 {
			cfg.AgentInterval = cfg.SignalEvery
		}
		dcfg.AgentWarmup = 3 * cfg.AgentInterval
	}
	e.det = detect.New(dcfg)
	if cfg.Migrator == nil {
		switch c := cfg.Compute.(type) {
		case cloud.Migrator:
			cfg.Migrator = c
		case interface{ Migrator() cloud.Migrator }: // the simulated cloud
			cfg.Migrator = c.Migrator()
		}
	}
	e.exec = &recover.Executor{Compute: cfg.Compute, Fencer: cfg.Fencer, Migrator: cfg.Migrator, Fabric: cfg.Fabric, Journal: journal{e},
		Now: cfg.Now, Hook: cfg.Hook, Sabotage: cfg.Sabotage, Hosts: e.hostNames, Guard: e.guard,
		Limits: cfg.Limits, HostOf: e.serverHost, SegmentOf: e.hostSegment}
	// The leases first: a store only this process opens is led at once (the
	// open incidents claimed for its new epoch); a shared one waits for its
	// leader to stop renewing. Starting must not depend on the store's leases
	// either: a standby starts, and watches.
	if err := keeper.Tick(ctx); err != nil && keeper.Store.Exclusive() {
		return nil, err
	}
	if err := e.reload(ctx, keeper.Led()); err != nil {
		return nil, err
	}
	ids, err := cfg.Store.BMCIdentities(ctx)
	if err != nil {
		return nil, err
	}
	e.det.SetIdentities(ids)
	for h := range ids {
		e.identRecorded[h] = true
	}
	// Steps a previous owner left in flight are settled at the first reconcile that
	// can reach the cloud: starting must not depend on the cloud answering.
	return e, nil
}

func (e *Engine) protect() {
	var ids []string
	for _, c := range e.clusters {
		ids = append(ids, c.Members...)
	}
	e.det.Protect(ids)
}

func (e *Engine) hostNames() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Sorted(maps.Keys(e.det.View().Hosts))
}

// TrustFence clears the doubt on a host's fence device: an operator checked or
// fixed its BMC (or its entry). If it still contradicts its host, it is doubted
// again.
func (e *Engine) TrustFence(ctx context.Context, host string) error {
	e.run.Lock()
	defer e.run.Unlock()
	if err := e.cfg.Store.ClearFenceDoubt(ctx, host); err != nil {
		return err
	}
	e.mu.Lock()
	was := e.fenceDoubt[host]
	delete(e.fenceDoubt, host)
	delete(e.identRecorded, host)
	e.det.ClearFenceDoubt(host)
	e.mu.Unlock()
	return e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "fence", Subject: "host/" + host,
		Message: "an operator trusts the fence device of host " + host + " again (it was doubted: " + was + ")"})
}

// Epoch is this engine's ownership token: the newest epoch among the shards it
// leads (0: it leads none; see Leadership).
func (e *Engine) Epoch() int64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return maxEpoch(e.loaded)
}

func maxEpoch(m map[string]int64) int64 {
	var out int64
	for _, ep := range m {
		out = max(out, ep)
	}
	return out
}

// Tick polls the cloud and reconciles once.
func (e *Engine) Tick(ctx context.Context) error {
	e.run.Lock()
	defer e.run.Unlock()
	if err := e.lead(ctx); err != nil {
		return err
	}
	return e.reconcile(ctx, e.observe(ctx))
}

// Signal reconciles on the signals alone: the heartbeats the agents sent since the
// last reconcile, and the BMC power of the hosts that look suspect (their agent went
// silent) or are being fenced, without listing the compute API. Silence is seen by
// time passing, so it is called often (every agent interval). While a host is found
// failed or its incident is open, it lists the cloud at once and reconciles on that
// too (the planner acts on host facts only when the hosts were just read).
func (e *Engine) Signal(ctx context.Context) error {
	e.run.Lock()
	defer e.run.Unlock()
	if err := e.lead(ctx); err != nil {
		return err
	}
	now := e.cfg.Now()
	obs := model.Observation{At: now, Source: "signals"}
	obs.Power, obs.Identity, obs.IdentityErr = e.readBMCs(ctx, now, nil)
	if err := e.reconcile(ctx, obs); err != nil {
		return err
	}
	if e.newCandidates(obs.Power) {
		// An agent went silent in this very reconcile: its BMC is asked now, not one
		// signal interval later (a power loss is proven by the two together).
		now = e.cfg.Now()
		obs = model.Observation{At: now, Source: "signals"}
		obs.Power, obs.Identity, obs.IdentityErr = e.readBMCs(ctx, now, nil)
		if err := e.reconcile(ctx, obs); err != nil {
			return err
		}
	}
	// A host's recovery goes on at once while each reconcile takes its next step
	// (fence, force-down, then a listing that shows the flag, then the evacuations),
	// not one step per signal interval; bounded, so the signals are heard again soon.
	for range 4 {
		if !e.hostRecoveryDue() {
			return nil
		}
		before := e.actions
		if err := e.reconcile(ctx, e.observe(ctx)); err != nil {
			return err
		}
		if e.actions == before {
			return nil // nothing new: the next signal interval
		}
	}
	return nil
}

// newCandidates reports whether a fenceable host that may have lost its power
// (mayHaveLostPower) was not read in read.
func (e *Engine) newCandidates(read map[string]model.Power) bool {
	if e.cfg.Fencer == nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for name := range e.det.View().Hosts {
		if _, ok := read[name]; ok || !e.cfg.Fencer.CanFence(name) {
			continue
		}
		if e.mayHaveLostPower(name) {
			return true
		}
	}
	return false
}

// hostRecoveryDue reports whether a host's verdict is failed, or a host's incident
// is open: its next step needs the hosts as they are now, so the cloud is listed at
// signal speed until it is over, not only at the next poll.
func (e *Engine) hostRecoveryDue() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, in := range e.open {
		if in.Subject.Kind == model.KindHost {
			return true
		}
	}
	for subj, v := range e.det.View().Verdicts {
		if subj.Kind == model.KindHost && v.Failed {
			return true
		}
	}
	return false
}

// Observe reconciles once on an observation pushed by a source (a notification).
func (e *Engine) Observe(ctx context.Context, obs model.Observation) error {
	e.run.Lock()
	defer e.run.Unlock()
	if err := e.lead(ctx); err != nil {
		return err
	}
	if obs.Err == "" && len(obs.Servers) > 0 {
		// A crash told by a notification is judged now, not at the next poll: the
		// action log it needs first is read here (one call per changed server).
		obs.Actions = e.readHistory(ctx, obs.Servers)
	}
	return e.reconcile(ctx, obs)
}

// observe polls the cloud in bulk and asks the BMCs (see readBMCs).
func (e *Engine) observe(ctx context.Context) model.Observation {
	obs := e.poller.Poll(ctx, e.cfg.Now())
	if obs.Err != "" {
		e.mu.Lock()
		e.stats.PollErrors++
		e.mu.Unlock()
		return obs
	}
	obs.Power, obs.Identity, obs.IdentityErr = e.readBMCs(ctx, e.cfg.Now(), obs.Hosts)
	obs.Actions = e.readHistory(ctx, obs.Servers)
	return obs
}

// readHistory reads the action log of each protected server that the detector must
// know the history of before calling it failed in place (detect.NeedHistory): one
// call per such server per change, never per server per poll. A log that cannot be
// read now is asked for again at the next poll; the server waits meanwhile.
func (e *Engine) readHistory(ctx context.Context, servers []model.Server) map[string][]model.InstanceAction {
	e.mu.RLock()
	ids := e.det.NeedHistory(servers)
	e.mu.RUnlock()
	var out map[string][]model.InstanceAction
	for _, id := range ids {
		acts, err := e.cfg.Compute.Actions(ctx, id)
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string][]model.InstanceAction{}
		}
		out[id] = acts
	}
	return out
}

// settle asks the cloud what became of the steps journaled as intent whose outcome
// is unknown (a previous owner stopped, or the cloud's answer was lost): see
// recover.Settle. A step not taken goes back to the planner, which decides again
// from what is observed now.
func (e *Engine) settle(ctx context.Context) error {
	e.mu.Lock()
	var open []model.Incident
	var idx []int
	for i, in := range e.open {
		if in.Unsettled() == nil {
			continue
		}
		in.Steps = slices.Clone(in.Steps)
		open = append(open, in)
		idx = append(idx, i)
	}
	e.mu.Unlock()
	if len(open) == 0 {
		return nil
	}
	err := e.exec.Settle(ctx, open)
	e.mu.Lock()
	for k, i := range idx { // fold back what was settled, even on error
		copy(e.open[i].Steps, open[k].Steps)
	}
	e.mu.Unlock()
	return err
}

// reconcile folds an observation in, plans, and carries the plan out.
func (e *Engine) reconcile(ctx context.Context, obs model.Observation) error {
	if e.cfg.Agents != nil {
		// Also while the compute API cannot be seen: an agent's beats are another
		// path, and their history must not have a hole where the API had one.
		obs.Agents = append(obs.Agents, e.cfg.Agents.Drain()...)
	}
	if obs.Err == "" && obs.Hosts != nil {
		e.refreshOthers(ctx)
		if err := e.settle(ctx); err != nil {
			if errors.Is(err, store.ErrStale) {
				return err
			}
			// The steps stay in flight (plan waits on them); the next reconcile asks again.
			if msg := err.Error(); msg != e.settleErr {
				e.settleErr = msg
				_ = e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "cloud", Subject: "cloud", Message: "cannot tell yet what became of a step in flight: " + msg})
			}
		} else {
			e.settleErr = ""
		}
	}
	now := e.cfg.Now()
	e.mu.Lock()
	e.stats.Ticks++
	wasErr, errSince := e.det.View().CloudErr, e.det.View().CloudErrSince
	e.det.SetGrace(e.hostGrace())
	e.det.SetForcedByVigil(e.forcedByVigil())
	if obs.Err == "" && obs.ServerGroups != nil {
		e.groups = obs.ServerGroups
	}
	changed := slices.DeleteFunc(e.det.Step(now, obs), func(v model.Verdict) bool {
		// The journal explains Vigil's decisions: unprotected servers get none.
		return v.Subject.Kind == model.KindServer && !e.det.Protected(v.Subject.ID)
	})
	nowErr := e.det.View().CloudErr
	doubted := map[string]string{} // host -> why, doubted at this reconcile: journaled below
	var doubts []model.Event
	for _, h := range slices.Sorted(maps.Keys(e.det.View().FenceDoubt)) {
		if why := e.det.View().FenceDoubt[h]; e.fenceDoubt[h] != why {
			e.fenceDoubt[h] = why
			doubted[h] = why
			doubts = append(doubts, model.Event{At: now, Kind: "fence", Subject: "host/" + h,
				Message: "fence device not trusted: " + why + "; this host is never fenced through it, and its incidents escalate instead"})
		}
	}
	// A BMC identity read for the first time becomes the one every later read is
	// compared with, after a restart too: it is journaled below.
	newIdent := map[string]string{}
	for h := range obs.Identity {
		if id := e.det.Identity(h); id != "" && !e.identRecorded[h] {
			newIdent[h] = id
		}
	}
	in := e.input(now)
	in.HostsStale = obs.Hosts == nil // a notification or signals: the hosts are as old as the last poll
	for h, p := range obs.Power {
		if p != model.PowerUnknown {
			if in.PowerRead == nil {
				in.PowerRead = map[string]bool{}
			}
			in.PowerRead[h] = true
		}
	}
	out := plan.Plan(in)
	e.mu.Unlock()

	var evs []model.Event
	for _, v := range changed {
		if v.Failed || v.Rule != "" && e.wasFailed(v) || loud(v) {
			evs = append(evs, model.Event{At: now, Kind: "verdict", Subject: v.Subject.String(),
				Message: fmt.Sprintf("%s: %s (%s)", health(v), strings.Join(v.Evidence, "; "), v.Rule)})
		}
	}
	evs = append(evs, doubts...)
	if len(e.loaded) == 0 {
		// A standby journals nothing: its leader does.
		newIdent, doubted = nil, nil
	}
	if len(newIdent) > 0 {
		if err := e.cfg.Store.RecordBMCIdentities(ctx, newIdent, now); err != nil {
			return err
		}
		e.mu.Lock()
		for h := range newIdent {
			e.identRecorded[h] = true
		}
		e.mu.Unlock()
	}
	for _, h := range slices.Sorted(maps.Keys(doubted)) {
		if err := e.cfg.Store.RecordFenceDoubt(ctx, h, doubted[h], now); err != nil {
			return err
		}
	}
	switch {
	case obs.Err != "" && wasErr == "":
		evs = append(evs, model.Event{At: now, Kind: "cloud", Subject: "cloud", Message: "cloud unreachable: " + obs.Err + "; no verdict and no action until it answers"})
	case nowErr == "" && wasErr != "": // a poll listed the cloud again (a notification does not count)
		evs = append(evs, model.Event{At: now, Kind: "cloud", Subject: "cloud", Message: fmt.Sprintf("cloud reachable again after %s", now.Sub(errSince).Round(time.Millisecond))})
	}
	if err := e.emit(ctx, evs...); err != nil {
		return err
	}
	return e.apply(ctx, now, out)
}

// loud: a verdict journaled though nothing fails: a host heard only on another path,
// Vigil cut off from many hosts, an agent gone silent. An operator must know.
func loud(v model.Verdict) bool {
	if v.Subject.Kind == model.KindAgent {
		return true
	}
	return v.Host == string(model.HostIsolated) || v.Host == string(model.HostPartitioned)
}

func (e *Engine) wasFailed(v model.Verdict) bool {
	_, open := e.incidentFor(v.Subject)
	return open
}

func health(v model.Verdict) string {
	if v.Subject.Kind == model.KindAgent {
		return "agent " + v.Host
	}
	if v.Host != "" {
		return "host " + v.Host
	}
	return "server " + v.Server
}

func (e *Engine) input(now time.Time) plan.Input {
	view := e.det.View()
	canFence := map[string]bool{}
	if e.cfg.Fencer != nil {
		for name := range view.Hosts {
			canFence[name] = e.cfg.Fencer.CanFence(name)
		}
	}
	return plan.Input{Now: now, Hosts: view.Hosts, Servers: view.Servers, Verdicts: view.Verdicts,
		CloudErr: view.CloudErr, Clusters: e.clusters, Policies: e.cfg.Policies, Open: e.open,
		LastClosed: e.lastClosed, Limits: e.cfg.Limits, CanFence: canFence, FenceDoubt: view.FenceDoubt,
		FenceUnconfirmed: e.unconfirmed, Running: view.Running, ServerGroups: e.groups, Sabotage: e.cfg.Sabotage, Fabric: fabricOf(e.cfg.Fabric),
		Sharding: e.cfg.Sharding, Led: e.ledSetLocked(), Others: e.others}
}

func (e *Engine) incidentFor(s model.Subject) (*model.Incident, bool) {
	for i := range e.open {
		if e.open[i].Subject == s {
			return &e.open[i], true
		}
	}
	return nil, false
}

// apply journals the plan and carries out its steps.
func (e *Engine) apply(ctx context.Context, now time.Time, out plan.Output) error {
	ids := map[int64]int64{} // temporary -> stored incident IDs
	for _, inc := range out.Open {
		tmp := inc.ID
		inc.Steps = nil
		if err := e.cfg.Store.CreateIncident(ctx, e.epochOf(inc.Shard), &inc); err != nil {
			return err
		}
		ids[tmp] = inc.ID
		e.mu.Lock()
		e.open = append(e.open, inc)
		e.mu.Unlock()
		if err := e.emit(ctx, model.Event{At: now, Kind: "incident", Subject: inc.Subject.String(), Incident: inc.ID,
			Message: fmt.Sprintf("incident %d opened (%s, policy %s): %s", inc.ID, inc.Rule, inc.Policy, strings.Join(inc.Evidence, "; "))}); err != nil {
			return err
		}
	}
	real := func(id int64) int64 {
		if r, ok := ids[id]; ok {
			return r
		}
		return id
	}
	e.mu.Lock()
	byID := map[int64]*model.Incident{}
	for i := range e.open {
		byID[e.open[i].ID] = &e.open[i]
	}
	e.mu.Unlock()

	for _, u := range out.Updates {
		inc := byID[real(u.Incident)]
		if inc == nil {
			continue
		}
		for i := range inc.Steps {
			st := &inc.Steps[i]
			if st.ID != u.Step {
				continue
			}
			e.mu.Lock()
			st.State, st.Error, st.Finished, st.Retryable = u.State, u.Error, now, u.Retryable
			cp := *st
			e.mu.Unlock()
			if err := e.cfg.Store.UpdateStep(ctx, e.epochOf(inc.Shard), cp); err != nil {
				return err
			}
			msg := fmt.Sprintf("%s %s: %s", cp.Action, cp.Subject().ID, cp.State)
			if cp.Error != "" {
				msg += ": " + cp.Error
			}
			if err := e.emit(ctx, model.Event{At: now, Kind: "step", Subject: cp.Subject().String(), Incident: cp.Incident, Message: msg}); err != nil {
				return err
			}
		}
	}
	type ref struct {
		inc *model.Incident
		i   int
	}
	var refs []ref
	e.mu.Lock()
	for _, st := range out.Steps {
		inc := byID[real(st.Incident)]
		if inc == nil {
			continue
		}
		st.Incident = inc.ID
		inc.Steps = append(inc.Steps, st)
		refs = append(refs, ref{inc, len(inc.Steps) - 1})
	}
	run := make([]*model.Step, len(refs))
	for i, r := range refs {
		run[i] = &r.inc.Steps[r.i]
	}
	e.mu.Unlock()
	// The executor writes into the steps; the API may read them meanwhile, so it
	// works on copies that are folded back after.
	copies := make([]*model.Step, len(run))
	for i, st := range run {
		cp := *st
		copies[i] = &cp
	}
	e.actions += len(copies)
	err := e.exec.Run(ctx, copies)
	e.mu.Lock()
	for i, st := range run {
		*st = *copies[i]
	}
	// Steps never journaled (the executor stopped before them, or left them out
	// behind a step of the same server whose answer was lost) are forgotten: the
	// next plan decides again from what the journal holds.
	for i := range e.open {
		e.open[i].Steps = slices.DeleteFunc(e.open[i].Steps, func(st model.Step) bool { return st.ID == 0 })
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	for _, c := range out.Changes {
		inc := byID[real(c.Incident)]
		if inc == nil {
			continue
		}
		e.mu.Lock()
		inc.State, inc.Reason, inc.Updated = c.State, c.Reason, now
		if c.State.Closed() {
			inc.Closed = now
		}
		cp := *inc
		e.mu.Unlock()
		if err := e.cfg.Store.UpdateIncident(ctx, e.epochOf(cp.Shard), cp); err != nil {
			return err
		}
		if err := e.emit(ctx, model.Event{At: now, Kind: "incident", Subject: cp.Subject.String(), Incident: cp.ID,
			Message: fmt.Sprintf("incident %d %s: %s", cp.ID, cp.State, cp.Reason)}); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.open = slices.DeleteFunc(e.open, func(in model.Incident) bool {
		if in.State.Closed() {
			e.lastClosed[in.Subject] = in
			return true
		}
		return false
	})
	e.mu.Unlock()
	return nil
}

func (e *Engine) emit(ctx context.Context, evs ...model.Event) error {
	// Only the leader of a subject's shard journals about it: a standby writes
	// nothing, and an old leader that lost its lease neither. The lease is renewed
	// first if due: after a pause, the renewal is what finds it lost.
	if err := e.keeper.TickIfDue(ctx); err != nil && ctx.Err() == nil {
		e.leaseErr(ctx, err)
	}
	evs = slices.DeleteFunc(slices.Clone(evs), func(ev model.Event) bool { return !e.writable(ev) })
	if len(evs) == 0 {
		return nil
	}
	if err := e.cfg.Store.AppendEvents(ctx, evs...); err != nil {
		return err
	}
	if e.cfg.OnEvent != nil {
		for _, ev := range evs {
			e.cfg.OnEvent(ev)
		}
	}
	return nil
}

// journal forwards the executor's writes to the store and its events to OnEvent.
type journal struct{ e *Engine }

// The executor's epoch is not used: each step is written under the epoch of its
// incident's shard.
func (j journal) AddStep(ctx context.Context, _ int64, st *model.Step) error {
	return j.e.cfg.Store.AddStep(ctx, j.e.epochOfIncident(st.Incident), st)
}
func (j journal) UpdateStep(ctx context.Context, _ int64, st model.Step) error {
	return j.e.cfg.Store.UpdateStep(ctx, j.e.epochOfIncident(st.Incident), st)
}
func (j journal) AppendEvents(ctx context.Context, evs ...model.Event) error {
	return j.e.emit(ctx, evs...)
}

// Run reconciles every interval and on every observation a source pushes, until ctx
// ends. Errors are reported to onErr and the loop goes on; a stale epoch ends it.
func (e *Engine) Run(ctx context.Context, interval time.Duration, pushed <-chan model.Observation, onErr func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var signals <-chan time.Time
	if e.cfg.SignalEvery > 0 {
		st := time.NewTicker(e.cfg.SignalEvery)
		defer st.Stop()
		signals = st.C
	}
	var wake <-chan struct{}
	if w, ok := e.cfg.Agents.(waker); ok {
		wake = w.Wake()
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go e.refreshLoop(rctx, onErr)
	// The leases are renewed beside the loop: a long reconcile (a BMC that does not
	// answer, a slow cloud) must not cost this replica its leadership.
	go e.keeper.Run(rctx, onErr)
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			err = e.Signal(ctx)
		case <-signals:
			err = e.Signal(ctx)
		case <-t.C:
			err = e.Tick(ctx)
		case obs := <-pushed:
			if obs.Poll {
				err = e.Tick(ctx)
			} else {
				err = e.Observe(ctx, obs)
			}
		}
		if errors.Is(err, store.ErrStale) {
			// Another replica took a shard over: the keeper finds which at once,
			// and the next reconcile drops it; this replica goes on for the rest.
			_ = e.keeper.Tick(ctx)
		}
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
}

// Clusters returns every cluster with its health.
func (e *Engine) Clusters() []model.ClusterStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v := e.det.View()
	out := make([]model.ClusterStatus, 0, len(e.clusters))
	open := append(slices.Clip(e.open), e.others...)
	for _, c := range e.clusters {
		out = append(out, clusterStatus(plan.Health(c, v.Servers, v.Verdicts, open, e.lastClosed)))
	}
	return out
}

// Hosts returns the observed hosts with their verdicts, sorted by name.
func (e *Engine) Hosts() []HostStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v := e.det.View()
	out := make([]HostStatus, 0, len(v.Hosts))
	for _, name := range slices.Sorted(maps.Keys(v.Hosts)) {
		hs := HostStatus{Host: v.Hosts[name], Verdict: v.Verdicts[model.Subject{Kind: model.KindHost, ID: name}],
			FenceDoubt: v.FenceDoubt[name]}
		if m, ok := e.maint[name]; ok {
			hs.Operator = &m
		}
		hs.Maintenance = hs.Maintenance || hs.Verdict.Host == string(model.HostMaintenance)
		out = append(out, hs)
	}
	return out
}

// Servers returns the observed servers with their verdicts, sorted by ID.
func (e *Engine) Servers() []ServerStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v := e.det.View()
	out := make([]ServerStatus, 0, len(v.Servers))
	for _, id := range slices.Sorted(maps.Keys(v.Servers)) {
		out = append(out, ServerStatus{Server: v.Servers[id], Verdict: v.Verdicts[model.Subject{Kind: model.KindServer, ID: id}]})
	}
	return out
}

// Cloud reports whether the cloud can be seen, and since when it cannot.
func (e *Engine) Cloud() CloudStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v := e.det.View()
	return CloudStatus{Reachable: v.CloudErr == "", Error: v.CloudErr, Since: v.CloudErrSince, LastFull: v.LastSeen, Stats: e.stats, Epoch: maxEpoch(e.loaded)}
}

// OpenIncidents returns copies of the open incidents.
func (e *Engine) OpenIncidents() []model.Incident {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]model.Incident, len(e.open))
	for i, in := range e.open {
		in.Steps = slices.Clone(in.Steps)
		out[i] = in
	}
	return out
}

// HostStatus is a host and Vigil's verdict on it.
type HostStatus struct {
	model.Host
	Verdict model.Verdict `json:"verdict"`
	// FenceDoubt says why the host's fence device is not trusted, if it is not.
	FenceDoubt string `json:"fence_doubt,omitempty"`
	// Operator: the maintenance an operator set through Vigil (journaled), if any.
	// Maintenance (the embedded Host's) is true whenever the verdict is maintenance:
	// an operator's, or Nova's disabled service honoured as one.
	Operator *model.Maintenance `json:"operator_maintenance,omitempty"`
}

// ServerStatus is a server and Vigil's verdict on it.
type ServerStatus struct {
	model.Server
	Verdict model.Verdict `json:"verdict"`
}

// CloudStatus says whether the cloud is visible.
type CloudStatus struct {
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	LastFull  time.Time `json:"last_full_listing,omitzero"`
	Stats     Stats     `json:"stats"`
	Epoch     int64     `json:"epoch"`
}
