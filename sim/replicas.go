package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/lead"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// The replica mode (Config.Replicas > 1): several Vigil replicas, each with its own
// engine, lease keeper and clock, share the one store and the one cloud, as
// replicas on one MariaDB would. Each leads some shards (a lease per shard in the
// store) and stands by for the others. The faults of this mode pause a leader past
// its lease (also in the middle of a step, between its intent and its action),
// kill one for good, restart one; the checks add that no two replicas ever act on
// one shard, and that a replica whose lease was taken over neither acts nor writes.

// ReplicaFaults are the fault kinds of the replica mode, drawn (from a stream of
// their own) only when Config.Replicas > 1: the other modes' seeds replay unchanged.
var ReplicaFaults = []string{
	"replica-pause",          // the leader is paused (SIGSTOP) past its lease's TTL, then resumes
	"replica-pause-mid-step", // a host fails; the leader is paused between a step's intent and its action, the others take over, it resumes inside that step
	"replica-kill",           // a replica dies for good (kill -9): its shards are taken over after the TTL
	"replica-restart",        // a replica restarts: a new process (new ID, new keeper, new engine) on the same store
}

var replicaKinds = map[string]bool{}

func init() {
	for _, k := range ReplicaFaults {
		replicaKinds[k] = true
	}
	FaultKinds = append(FaultKinds, ReplicaFaults...)
}

// simLeaseTTL is the replicas' lease TTL: the default (a leader renews every
// 2.5 s, a standby takes over after 10 s of silence), against the world's 2 s step.
const simLeaseTTL = model.DefaultLeaseTTL

type replicaWorld struct {
	reps     []*replica
	cur      *replica // the replica being stepped, or the primary between steps
	sharding model.Sharding
	timing   model.LeaseTiming
	rng      *rand.Rand
	// pauseArmed: the next step of the replica that takes one first (of action
	// pauseOn, if set) pauses it for that long after its intent.
	pauseArmed time.Duration
	pauseOn    model.Action
	nested     bool
	// lastAct: per shard, the epoch of the last action on it (epochs only grow).
	lastAct   map[string]int64
	takeovers int
}

type replica struct {
	name   string // its slot: r1, r2, r3
	id     string // this incarnation's replica ID (a restart is a new process)
	incarn int
	eng    *engine.Engine
	keeper *lead.Keeper
	beats  agentQueue
	offset time.Duration
	drift  float64
	paused time.Time // paused until then
	down   time.Time // not running until then (zero: running, or dead)
	dead   bool
	frozen bool // paused inside its own step (pauseInside): its engine is busy
}

func (r *replica) at(t time.Time) time.Time {
	el := t.Sub(epoch0)
	return t.Add(r.offset + time.Duration(r.drift*float64(el)))
}

// running: started, not dead, not paused at now.
func (r *replica) running(now time.Time) bool {
	return r.eng != nil && !r.dead && !r.frozen && !now.Before(r.paused)
}

// replicaStore is the shared store as one replica uses it: not exclusive (other
// replicas share it, so no lease is forced), and every write checked (invariant 14:
// a replica writes only for the shards it validly leads).
type replicaStore struct {
	*sqlite.DB
	w *world
	r *replica
}

func (s replicaStore) Exclusive() bool { return false }

func (s replicaStore) AppendEvents(ctx context.Context, evs ...model.Event) error {
	if err := s.DB.AppendEvents(ctx, evs...); err != nil {
		return err
	}
	for _, ev := range evs {
		s.w.checkWrite(s.r, "event "+ev.Kind+" "+ev.Subject+": "+ev.Message, s.w.shardOfEvent(ev))
	}
	return nil
}

func (s replicaStore) AddStep(ctx context.Context, epoch int64, st *model.Step) error {
	if err := s.DB.AddStep(ctx, epoch, st); err != nil {
		return err
	}
	s.w.checkEpochWrite(s.r, fmt.Sprintf("step %s of incident %d", st.Action, st.Incident), epoch)
	return nil
}

func (s replicaStore) UpdateStep(ctx context.Context, epoch int64, st model.Step) error {
	if err := s.DB.UpdateStep(ctx, epoch, st); err != nil {
		return err
	}
	s.w.checkEpochWrite(s.r, fmt.Sprintf("step %s of incident %d (%s)", st.Action, st.Incident, st.State), epoch)
	return nil
}

func (s replicaStore) UpdateIncident(ctx context.Context, epoch int64, in model.Incident) error {
	if err := s.DB.UpdateIncident(ctx, epoch, in); err != nil {
		return err
	}
	s.w.checkEpochWrite(s.r, fmt.Sprintf("incident %d (%s)", in.ID, in.State), epoch)
	return nil
}

// replicaDriver is the world's driver as one replica calls it: every mutation of
// the cloud is checked against that replica's lease of the shard it touches.
type replicaDriver struct {
	*driver
	r *replica
}

// server is the shard an action on a server is taken for: that of the journal's
// open incident with a step of that action on it in flight (an evacuated server's ports are
// lifted on its new host, under its old host's shard), else its host's.
func (d replicaDriver) server(id string, acts ...model.Action) string {
	if open, err := d.w.db.OpenIncidents(context.Background()); err == nil {
		for _, in := range open {
			for _, st := range in.Steps {
				if st.Server == id && slices.Contains(acts, st.Action) && st.State == model.StepIntent && in.Shard != "" {
					return in.Shard
				}
			}
		}
	}
	return d.w.shardOfHost(d.cloud.ServerHost(id))
}

func (d replicaDriver) host(h string) string { return d.w.shardOfHost(h) }

func (d replicaDriver) Reboot(ctx context.Context, id string, hard bool) error {
	d.w.checkActor(d.r, "reboot "+id, d.server(id, model.ActReboot, model.ActHardReboot))
	return d.driver.Reboot(ctx, id, hard)
}
func (d replicaDriver) Rebuild(ctx context.Context, id string) error {
	d.w.checkActor(d.r, "rebuild "+id, d.server(id, model.ActRebuild))
	return d.driver.Rebuild(ctx, id)
}
func (d replicaDriver) ResetState(ctx context.Context, id string) error {
	d.w.checkActor(d.r, "reset-state "+id, d.server(id, model.ActResetState))
	return d.driver.ResetState(ctx, id)
}
func (d replicaDriver) ForceDown(ctx context.Context, host string, down bool) error {
	d.w.checkActor(d.r, fmt.Sprintf("force-down(%v) %s", down, host), d.host(host))
	return d.driver.ForceDown(ctx, host, down)
}
func (d replicaDriver) Evacuate(ctx context.Context, id, target string) error {
	d.w.checkActor(d.r, "evacuate "+id, d.server(id, model.ActEvacuate))
	return d.driver.Evacuate(ctx, id, target)
}
func (d replicaDriver) PowerOff(ctx context.Context, host string) error {
	d.w.checkActor(d.r, "power-off "+host, d.host(host))
	return d.driver.PowerOff(ctx, host)
}
func (d replicaDriver) PortsDown(ctx context.Context, id, host string) ([]string, error) {
	d.w.checkActor(d.r, "ports-down "+id, d.host(host))
	return d.driver.PortsDown(ctx, id, host)
}
func (d replicaDriver) PortsUp(ctx context.Context, id string) ([]string, error) {
	d.w.checkActor(d.r, "ports-up "+id, d.server(id, model.ActPortsUp))
	return d.driver.PortsUp(ctx, id)
}
func (d replicaDriver) CutVolumes(ctx context.Context, id, host string) ([]string, error) {
	d.w.checkActor(d.r, "cut-volumes "+id, d.host(host))
	return d.driver.CutVolumes(ctx, id, host)
}
func (d replicaDriver) Migrator() cloud.Migrator { return replicaMigrator{d} }

type replicaMigrator struct{ d replicaDriver }

func (m replicaMigrator) LiveMigrate(ctx context.Context, id, target string) error {
	m.d.w.checkActor(m.d.r, "live-migrate "+id, m.d.server(id, model.ActLiveMigrate))
	return migrator{m.d.driver}.LiveMigrate(ctx, id, target)
}
func (m replicaMigrator) ColdMigrate(ctx context.Context, id, target string) error {
	m.d.w.checkActor(m.d.r, "cold-migrate "+id, m.d.server(id, model.ActColdMigrate))
	return migrator{m.d.driver}.ColdMigrate(ctx, id, target)
}
func (m replicaMigrator) ConfirmResize(ctx context.Context, id string) error {
	m.d.w.checkActor(m.d.r, "confirm-resize "+id, m.d.server(id, model.ActConfirmMigrate, model.ActColdMigrate))
	return migrator{m.d.driver}.ConfirmResize(ctx, id)
}

// setupReplicas makes the replicas (not started yet); the first keeps the seed's
// clock (the clock-skew setting), the others draw theirs within the same bound.
func (w *world) setupReplicas() {
	rw := &replicaWorld{rng: rand.New(rand.NewPCG(w.seed, 0x2e91)), lastAct: map[string]int64{},
		timing: model.LeaseTiming{TTL: simLeaseTTL}}
	rw.sharding = model.DefaultSharding()
	if w.cfg.ShardPerSegment {
		rw.sharding = model.Sharding{}
		for i := range max(1, w.cfg.Segments) {
			seg := fmt.Sprintf("seg%d", i)
			rw.sharding.Shards = append(rw.sharding.Shards, model.Shard{Name: seg, Segments: []string{seg}})
		}
	}
	for i := range w.cfg.Replicas {
		r := &replica{name: fmt.Sprintf("r%d", i+1), offset: w.offset, drift: w.drift}
		if i > 0 {
			r.offset = []time.Duration{0, 2, -2, 5, -5, 30, -30}[rw.rng.IntN(7)] * time.Second
			r.drift = []float64{0, 1e-4, -1e-4, 5e-4, -5e-4}[rw.rng.IntN(5)]
		}
		r.id = r.name
		rw.reps = append(rw.reps, r)
	}
	rw.cur = rw.reps[0]
	w.rep = rw
	var clocks []string
	for _, r := range rw.reps {
		clocks = append(clocks, fmt.Sprintf("%s %+v drift %+g", r.name, r.offset, r.drift))
	}
	w.settings = append(w.settings, fmt.Sprintf("replicas(%d, %d shards; clocks %s)", len(rw.reps), len(rw.sharding.Shards), strings.Join(clocks, ", ")))
	// Every replica says it lives before the first takes its leases: the shards are
	// shared out (each takes its fair share), not all taken by the first to start.
	for _, r := range rw.reps {
		_ = w.db.Heartbeat(context.Background(), store.Replica{ID: r.id, Seen: r.at(w.now), Started: r.at(w.now)})
	}
}

// startReplica starts a replica's engine: a new keeper, a new engine, the store
// and the cloud shared.
func (w *world) startReplica(r *replica) error {
	cfg := w.ecfg
	cfg.Store = replicaStore{DB: w.db, w: w, r: r}
	d := replicaDriver{driver: w.drv, r: r}
	cfg.Compute, cfg.Fencer, cfg.Fabric, cfg.Migrator = d, d, d, nil
	cfg.Now = func() time.Time { return r.at(w.now) }
	cfg.Sharding, cfg.ReplicaID, cfg.LeaseTTL = w.rep.sharding, r.id, w.rep.timing.TTL
	cfg.Hook.AfterIntent = w.replicaHook(r)
	if w.agents {
		r.beats = agentQueue{}
		cfg.Agents = &r.beats
	}
	k := lead.New(cfg.Store, r.id, w.rep.sharding.Names(), w.rep.timing, cfg.Now)
	k.OnChange = func(c lead.Change) { w.leaseChange(r, c) }
	cfg.Keeper = k
	r.keeper = k // the engine's start journals under it already
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		return err
	}
	r.eng, r.down = eng, time.Time{}
	w.rep.cur = r
	w.eng = eng
	return nil
}

// startOthers starts every replica but the first (started with the world, it
// created the clusters).
func (w *world) startOthers() error {
	for _, r := range w.rep.reps[1:] {
		if err := w.startReplica(r); err != nil {
			return fmt.Errorf("start replica %s: %w", r.name, err)
		}
	}
	w.setPrimary()
	return nil
}

func (w *world) leaseChange(r *replica, c lead.Change) {
	what := "lost"
	if c.Taken {
		what = "takes"
		if strings.Contains(c.Why, "did not renew") {
			w.rep.takeovers++
			w.stats.Takeovers++
		}
	}
	w.logf("replica %s %s shard %s (epoch %d): %s", r.id, what, c.Shard, c.Epoch, c.Why)
}

// setPrimary points w.eng at the running replica that leads the most shards (the
// operator's API, the checkers' view of Vigil); nil when none runs.
func (w *world) setPrimary() {
	var best *replica
	most := -1
	for _, r := range w.rep.reps {
		if !r.running(w.now) {
			continue
		}
		if n := len(r.keeper.Led()); n > most {
			best, most = r, n
		}
	}
	w.rep.cur = best
	w.eng = nil
	if best != nil {
		w.eng = best.eng
	}
}

// engFor is the engine an operator's request about a host goes to: the replica
// leading its shard (a standby answers with ErrStandby naming it), else w.eng.
func (w *world) engFor(host string) *engine.Engine {
	if w.rep == nil || w.eng == nil {
		return w.eng
	}
	shard := w.rep.sharding.Of(w.cloud.Truth(host).Segment)
	for _, r := range w.rep.reps {
		if r.running(w.now) && r.keeper.Led()[shard] != 0 {
			return r.eng
		}
	}
	return w.eng
}

// stepReplicas reconciles every running replica once, in a fixed order.
func (w *world) stepReplicas(ctx context.Context) error {
	defer w.setPrimary()
	for _, r := range w.rep.reps {
		if err := w.stepReplica(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) stepReplica(ctx context.Context, r *replica) error {
	if r.dead {
		return nil
	}
	if r.eng == nil {
		if r.down.IsZero() || w.now.Before(r.down) {
			return nil
		}
		w.rep.cur = r
		w.restart("back after its downtime")
	}
	if !r.running(w.now) {
		return nil
	}
	if !r.paused.IsZero() {
		w.logf("replica %s resumes after its pause", r.id)
		r.paused = time.Time{}
	}
	w.rep.cur, w.eng = r, r.eng
	// The beats sent while the replicas before it reconciled (virtual time passes in
	// their calls): replicas run side by side, not one after another, and each hears
	// the agents up to its own reconcile.
	w.pumpBeats()
	err := w.reconcile(ctx)
	switch {
	case errors.Is(err, recover.ErrCrash) && w.crashDown > 0:
		w.down(w.crashDown, "crashed between a step's intent and its outcome")
		w.crashDown = 0
	case errors.Is(err, recover.ErrCrash):
		w.restart("crash between a step's intent and its outcome")
	case errors.Is(err, store.ErrStale):
		// Another replica took one of its shards over: it goes on as a standby
		// there (what engine.Run does), and leads the rest.
		w.logf("replica %s: %v", r.id, err)
		_ = r.keeper.Tick(ctx)
	case err != nil:
		return fmt.Errorf("replica %s: %w", r.id, err)
	}
	return nil
}

// restartReplica: w.restart in the replica mode (the current replica restarts:
// a new process, a new ID).
func (w *world) restartReplica(why string) {
	r := w.rep.cur
	if r == nil {
		return
	}
	r.incarn++
	r.id = fmt.Sprintf("%s.%d", r.name, r.incarn)
	w.stats.Restarts++
	w.logf("replica %s restarts as %s (%s)", r.name, r.id, why)
	if err := w.startReplica(r); err != nil {
		w.logf("replica %s fails to start: %v", r.id, err)
		w.violate(6, "replica %s could not restart: %v", r.id, err)
	}
}

// downReplica: w.down in the replica mode.
func (w *world) downReplica(d time.Duration, why string) {
	r := w.rep.cur
	if r == nil {
		return
	}
	w.logf("replica %s is down for %s (%s)", r.id, d, why)
	r.eng, r.down = nil, w.now.Add(d)
	w.setPrimary()
}

// observeAll hands a notification to every running replica.
func (w *world) observeAll(ctx context.Context, obs model.Observation) {
	if w.rep == nil {
		if err := w.eng.Observe(ctx, obs); err != nil && !errors.Is(err, recover.ErrCrash) {
			w.logf("notification: %v", err)
		}
		return
	}
	defer w.setPrimary()
	for _, r := range w.rep.reps {
		if !r.running(w.now) {
			continue
		}
		w.rep.cur, w.eng = r, r.eng
		if err := r.eng.Observe(ctx, obs); err != nil && !errors.Is(err, recover.ErrCrash) {
			w.logf("notification to %s: %v", r.id, err)
		}
	}
}

// queueBeat gives each live replica its copy of an agent's beat, on its clock. A
// paused one finds them waiting when it resumes (its socket's buffer holds them);
// a stopped one loses them.
func (w *world) queueBeat(b model.AgentBeat) {
	at := b.At
	for _, r := range w.rep.reps {
		if r.eng != nil && !r.dead {
			b.At = r.at(at)
			r.beats.beats = append(r.beats.beats, b)
		}
	}
}

// refreshClusters has each running replica resolve the clusters' sources (each
// replica's own loop does it).
func (w *world) refreshClusters(ctx context.Context) {
	if w.rep == nil {
		if err := w.eng.RefreshClusters(ctx); err != nil {
			w.logf("refresh of the clusters' sources: %v", err)
		}
		return
	}
	defer w.setPrimary()
	for _, r := range w.rep.reps {
		if r.running(w.now) {
			w.rep.cur, w.eng = r, r.eng
			if err := r.eng.RefreshClusters(ctx); err != nil {
				w.logf("replica %s: refresh of the clusters' sources: %v", r.id, err)
			}
		}
	}
}

// openIncidents: the journal's open incidents (every shard's), for the world's
// pacing and its end.
func (w *world) openIncidents() []model.Incident {
	if w.rep == nil {
		return w.eng.OpenIncidents()
	}
	open, err := w.db.OpenIncidents(context.Background())
	if err != nil {
		w.logf("read open incidents: %v", err)
	}
	return open
}

// keepLeases: the running replicas' keepers renew through a quiet span the world
// jumps over (their engines would, each poll): a jump is no pause.
func (w *world) keepLeases(to time.Time) {
	if w.rep == nil {
		return
	}
	for t := w.now; t.Before(to); t = t.Add(w.rep.timing.RenewEvery()) {
		w.now = t
		for _, r := range w.rep.reps {
			if r.running(w.now) {
				_ = r.keeper.TickIfDue(context.Background())
			}
		}
	}
}

// maxSkew: the smallest replica clock minus the cloud's (incidents are stamped on
// the opening replica's clock: the latest deadline counts).
func (w *world) minSkew() time.Duration {
	if w.rep == nil {
		return w.vigilClock().Sub(w.now)
	}
	s := w.rep.reps[0].at(w.now).Sub(w.now)
	for _, r := range w.rep.reps[1:] {
		s = min(s, r.at(w.now).Sub(w.now))
	}
	return s
}

// replicaSchedule draws the replica faults, from their own stream: 1-3 per seed.
func (w *world) replicaSchedule() {
	kinds := ReplicaFaults
	if len(w.cfg.Faults) > 0 {
		kinds = slices.DeleteFunc(slices.Clone(w.cfg.Faults), func(k string) bool { return !replicaKinds[k] })
	}
	if len(kinds) == 0 {
		return
	}
	rng := w.rep.rng
	window := w.cfg.Until - w.cfg.Settle
	for range 1 + rng.IntN(3) {
		f := fault{at: epoch0.Add(time.Minute + time.Duration(rng.Int64N(int64(window-time.Minute)))), kind: kinds[rng.IntN(len(kinds))]}
		switch f.kind {
		case "replica-pause", "replica-pause-mid-step":
			// Past the TTL, so that a standby takes over: 1.2 TTL to 2 min.
			f.dur = w.rep.timing.TTL*6/5 + time.Duration(rng.Int64N(int64(2*time.Minute-w.rep.timing.TTL*6/5)))
			f.target = w.hosts[rng.IntN(len(w.hosts))]
		case "replica-kill", "replica-restart":
			f.target = fmt.Sprintf("r%d", 1+rng.IntN(len(w.rep.reps)))
		}
		w.sched = append(w.sched, f)
	}
	sort.SliceStable(w.sched, func(i, j int) bool { return w.sched[i].at.Before(w.sched[j].at) })
}

// beginReplica starts a fault of the replica mode (false: not one).
func (w *world) beginReplica(f fault) bool {
	if !replicaKinds[f.kind] {
		return false
	}
	if w.rep == nil {
		w.logf("fault %s needs the replica mode: nothing happens", f.kind)
		return true
	}
	switch f.kind {
	case "replica-pause":
		r := w.rep.cur // the primary: the replica leading the most shards
		if r == nil {
			w.logf("no replica runs: nothing to pause")
			return true
		}
		r.paused = w.now.Add(f.dur)
		w.logf("replica %s paused for %s (leads %v)", r.id, f.dur, r.keeper.Led())
		w.setPrimary()
	case "replica-pause-mid-step":
		// A host fails; the first step taken for it (its fence, or by seed its
		// evacuation) pauses its replica between intent and action.
		w.rep.pauseArmed, w.rep.pauseOn = f.dur, ""
		if w.rng.IntN(2) == 0 {
			w.rep.pauseOn = model.ActEvacuate
		}
		w.loseHost(f.target)
	case "replica-kill":
		r := w.replicaNamed(f.target)
		if r == nil || r.dead || w.liveReplicas() < 2 {
			w.logf("replica %s not killed: the last one left", f.target)
			return true
		}
		w.logf("replica %s killed for good (leads %v)", r.id, r.keeper.Led())
		r.dead, r.eng = true, nil
		w.setPrimary()
	case "replica-restart":
		r := w.replicaNamed(f.target)
		if r == nil || r.dead || r.eng == nil {
			w.logf("replica %s not running: not restarted", f.target)
			return true
		}
		w.rep.cur = r
		w.restartReplica("restarted by an operator")
		w.setPrimary()
	}
	return true
}

func (w *world) replicaNamed(name string) *replica {
	for _, r := range w.rep.reps {
		if r.name == name {
			return r
		}
	}
	return nil
}

func (w *world) liveReplicas() int {
	n := 0
	for _, r := range w.rep.reps {
		if !r.dead {
			n++
		}
	}
	return n
}

// replicaHook is a replica's AfterIntent: the armed pause (the others run past the
// TTL meanwhile; on resuming, the step's guard must refuse), then the crash hook.
func (w *world) replicaHook(r *replica) func(model.Step) error {
	crash := w.crashHook("after-intent")
	return func(st model.Step) error {
		if w.rep.pauseArmed > 0 && !w.rep.nested && (w.rep.pauseOn == "" || st.Action == w.rep.pauseOn) {
			d := w.rep.pauseArmed
			w.rep.pauseArmed = 0
			w.pauseInside(r, st, d)
		}
		return crash(st)
	}
}

// pauseInside runs the world without r for d (the other replicas reconcile, the
// cloud moves on; the fault schedule waits), then r goes on inside its step.
func (w *world) pauseInside(r *replica, st model.Step, d time.Duration) {
	w.logf("replica %s paused for %s right after the intent of %s %s%s (leads %v)", r.id, d, st.Action, st.Server, st.Host, r.keeper.Led())
	ctx := context.Background()
	until := w.now.Add(d)
	r.paused, r.frozen = until, true
	w.rep.nested = true
	signalOnly := w.signalOnly
	w.signalOnly = false // the others poll, as in any busy span
	defer func() { w.signalOnly = signalOnly }()
	for w.now.Before(until) {
		w.now = w.now.Add(2 * time.Second)
		w.deliver(ctx)
		w.pumpBeats()
		for _, o := range w.rep.reps {
			if o != r {
				if err := w.stepReplica(ctx, o); err != nil {
					w.logf("while %s is paused: %v", r.id, err)
				}
			}
		}
		w.setPrimary()
		w.checkTick()
	}
	w.rep.nested = false
	r.paused, r.frozen = time.Time{}, false
	w.rep.cur, w.eng = r, r.eng
	w.logf("replica %s resumes inside its step %s %s%s", r.id, st.Action, st.Server, st.Host)
}

// validLease: r leads shard now, by the store's lease row and by its own keeper
// (its last renewal recent enough on its own clock), under the same epoch; held:
// by the store's row alone (r is its holder: nobody took it over).
func (w *world) validLease(r *replica, shard string) (bool, string) {
	return w.leaseOf(r, shard, true)
}

func (w *world) heldLease(r *replica, shard string) (bool, string) {
	return w.leaseOf(r, shard, false)
}

func (w *world) leaseOf(r *replica, shard string, keeperToo bool) (bool, string) {
	leases, err := w.db.Leases(context.Background())
	if err != nil {
		return true, "" // the store cannot say: nothing to check against
	}
	ep := int64(0)
	if r.keeper != nil {
		ep = r.keeper.Epoch(shard)
	}
	for _, l := range leases {
		if l.Shard == shard {
			ok := l.Holder == r.id && (!keeperToo || ep != 0 && l.Epoch == ep)
			return ok, fmt.Sprintf("the store's lease of shard %s: holder %q epoch %d; %s's keeper: epoch %d", shard, l.Holder, l.Epoch, r.id, ep)
		}
	}
	return false, fmt.Sprintf("shard %s has no lease; %s's keeper: epoch %d", shard, r.id, ep)
}

// checkActor (invariant 14): a replica acts on the cloud only for a shard it
// validly leads, and never under an epoch older than one that already acted there.
func (w *world) checkActor(r *replica, what, shard string) {
	if !r.running(w.now) {
		w.violate(14, "replica %s acts (%s) while paused or stopped", r.id, what)
	}
	ok, why := w.validLease(r, shard)
	if !ok {
		w.violate(14, "replica %s acts (%s) without leading shard %s: %s", r.id, what, shard, why)
		return
	}
	ep := r.keeper.Epoch(shard)
	if last := w.rep.lastAct[shard]; ep < last {
		w.violate(14, "replica %s acts (%s) on shard %s under epoch %d after epoch %d acted there", r.id, what, shard, ep, last)
	}
	w.rep.lastAct[shard] = ep
}

// checkWrite (invariant 14): an event is journaled only by the leader of its
// subject's shard ("" : any shard), still its holder in the store at the write
// (the store is the arbiter of writes; a lapsed renewal only stops actions).
func (w *world) checkWrite(r *replica, what, shard string) {
	if shard != "" {
		if ok, why := w.heldLease(r, shard); !ok {
			w.violate(14, "replica %s journals (%s) without leading shard %s: %s", r.id, what, shard, why)
		}
		return
	}
	for _, s := range w.rep.sharding.Names() {
		if ok, _ := w.heldLease(r, s); ok {
			return
		}
	}
	w.violate(14, "replica %s journals (%s) while it leads no shard", r.id, what)
}

// checkEpochWrite (invariant 14): a step or incident write the store accepted was
// made under an epoch whose lease this replica still holds in the store.
func (w *world) checkEpochWrite(r *replica, what string, epoch int64) {
	leases, err := w.db.Leases(context.Background())
	if err != nil {
		return
	}
	for _, l := range leases {
		if l.Holder == r.id && l.Epoch == epoch {
			return
		}
	}
	w.violate(14, "replica %s writes %s under epoch %d, which it does not hold (leases: %+v)", r.id, what, epoch, leases)
}

func (w *world) shardOfHost(h string) string { return w.rep.sharding.Of(w.cloud.Truth(h).Segment) }

// shardOfEvent is the shard of an event's subject (a host's, a server's host's),
// "" for one of no shard.
func (w *world) shardOfEvent(ev model.Event) string {
	kind, id, ok := strings.Cut(ev.Subject, "/")
	if !ok {
		return ""
	}
	switch kind {
	case model.KindHost, model.KindDrain, model.KindAgent:
		return w.rep.sharding.Of(w.cloud.Truth(id).Segment)
	}
	// A server's: "" (any shard its writer leads): its incident stays with the
	// shard it was opened in, wherever an evacuation took the server since.
	return ""
}

// checkReplicasTick (invariant 3 across replicas): one step in flight per server
// in the whole journal, whichever replica journaled it.
func (w *world) checkReplicasTick() {
	if w.rep == nil {
		return
	}
	perServer := map[string]int{}
	for _, in := range w.openIncidents() {
		for _, st := range in.Steps {
			if (st.State == model.StepIntent || st.State == model.StepIssued) && st.Server != "" {
				perServer[st.Server]++
			}
		}
	}
	for id, n := range perServer {
		if n > 1 {
			w.violate(3, "server %s has %d steps in flight at once in the journal", id, n)
		}
	}
}
