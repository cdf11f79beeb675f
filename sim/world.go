package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// Config sizes a world and its run.
type Config struct {
	Hosts    int
	Servers  int
	Segments int
	// Until is the simulated duration; faults stop at Until minus Settle, so every
	// recovery can finish (or escalate) before the liveness check.
	Until  time.Duration
	Settle time.Duration
	// Faults restricts the fault kinds (nil: all).
	Faults []string
	// Settings restricts the world settings a seed may draw (nil: all; an empty,
	// non-nil list: none, the plain world).
	Settings []string
	Sabotage model.Sabotage
	// Planted: deliberate bugs the simulation's driver plants at the edge (see
	// Sabotages), to prove a checker catches what the engine's switches cannot show.
	Planted []string
	// Dir holds the run's SQLite file ("" makes and removes a temp dir).
	Dir string
	// Log keeps the event log in the result (a sweep only keeps failures).
	Log bool
	// Replicas > 1: that many Vigil replicas share the store and the cloud, each
	// with its own lease keeper and clock (sim/replicas.go); ShardPerSegment gives
	// each segment its own shard (else one shard of every segment).
	Replicas        int
	ShardPerSegment bool
	// DryRun runs every policy dry (model.Policy.DryRun): Vigil journals what it
	// would do and mutates nothing (sim/dryrun.go).
	DryRun bool
}

// DefaultConfig is the default-size world: 20 hosts, 200 servers, 2 segments, 2 h.
func DefaultConfig() Config {
	return Config{Hosts: 20, Servers: 200, Segments: 2, Until: 2 * time.Hour, Settle: 30 * time.Minute}
}

// SmallConfig is a small world for fast sweeps.
func SmallConfig() Config {
	return Config{Hosts: 6, Servers: 30, Segments: 2, Until: 45 * time.Minute, Settle: 20 * time.Minute}
}

// Violation is one broken invariant.
type Violation struct {
	Invariant int
	At        time.Duration // since the start
	What      string
}

func (v Violation) String() string {
	return fmt.Sprintf("invariant %d (%s) at %s: %s", v.Invariant, invariantNames[v.Invariant], fmtDur(v.At), v.What)
}

var invariantNames = map[int]string{
	1:  "never two copies",
	2:  "no evacuation without a verified fence",
	3:  "one recovery per server, no step twice",
	4:  "limits and brake",
	5:  "no fence of a live host",
	6:  "every failure answered",
	7:  "everything explained",
	8:  "nothing concluded while the cloud cannot be seen",
	9:  "no recovery of a healthy server",
	10: "migrations only off a live host; a drain moves its servers or says why",
	11: "no fence or evacuation of a host in maintenance",
	12: "no return of a dead or occupied host",
	13: "placement honours server groups and restart priority",
	14: "one replica acts and writes for a shard, under a valid lease",
}

// Invariants is the number of invariants the checkers hold a run to.
var Invariants = len(invariantNames)

// Result is one run's outcome.
type Result struct {
	Seed       uint64
	Violations []Violation
	Log        []string
	Stats      Stats
	// Kinds counts the faults of each kind the run began; Settings names the world
	// settings it drew (e.g. "clock-skew").
	Kinds    map[string]int
	Settings []string
	// Agents: the world ran host agents. Detect: for each host that lost its power
	// while Vigil ran, the time until Vigil opened an incident for it.
	Agents bool
	Detect []time.Duration
	// Mutations counts the mutating calls Vigil made to the cloud, BMCs and fabric;
	// Decisions is each incident's first decision, in the journal's order (dryrun.go).
	Mutations int
	Decisions []Decision
}

// Stats counts what happened in a run.
type Stats struct {
	Faults, Incidents, Resolved, Escalated, Restarts, Ticks int
	// Signals: reconciles on the agents' signals alone (no compute API poll).
	Signals int
	// Takeovers: shards a replica took over from one that stopped renewing.
	Takeovers int
}

// Run simulates one seed.
func Run(seed uint64, cfg Config) (Result, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vigil-sim-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	w, err := newWorld(seed, cfg, filepath.Join(dir, "vigil.db"))
	if err != nil {
		return Result{}, err
	}
	defer w.db.Close()
	if err := w.run(); err != nil {
		return w.result(), fmt.Errorf("seed %d: %w", seed, err)
	}
	return w.result(), nil
}

var epoch0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// WorldSettings name what a seed may draw about its world, besides its faults.
var WorldSettings = []string{
	"clock-skew",    // Vigil's clock is off the cloud's: ±2 s, ±5 s, ±30 s, and a small drift
	"no-bmc",        // one host has no BMC (CanFence false)
	"policies",      // clusters by host, under different policies (host_down_grace 5 min, service_fence_only)
	"notifications", // Nova's notifications pushed to Vigil; some late (minutes), some twice
	"resume-guests", // resume_guests_state_on_host_boot: a host powered on starts its guests again
	"rare-full",     // a full listing every 5 min instead of every minute (a large cloud's cost)
	// Issue 14:
	"agents", // a host agent on every host: heartbeats on two paths, peers, domains, guest probes
	// Issue 15 (drawn from a stream of its own, see groups.go):
	"groups", // clusters from a Heat stack and from server metadata, edited mid-run
	// Issue 15:
	"placement", // flavors, Placement inventories (some with little room), priorities, server groups
}

// Issue13Settings are the world settings of issue 13's world: a seed restricted to
// them (with Issue13Faults) replays as it did before the agents came.
var Issue13Settings = WorldSettings[:6:6]

type world struct {
	dbPath string
	cfg    Config
	seed   uint64
	rng    *rand.Rand
	now    time.Time
	cloud  *sim.Cloud
	db     *sqlite.DB
	eng    *engine.Engine
	ecfg   engine.Config
	drv    *driver
	hosts  []string
	prot   map[string]bool
	sched  []fault
	active []activeFault
	log    []string
	viol   []Violation
	stats  Stats
	kinds  map[string]int
	// Host agents (the "agents" setting): their beats wait in beats until the
	// engine drains them; signalOnly makes the next reconcile one on the signals
	// alone (no compute API poll); heardSince: since when each host is heard, in
	// truth, on an agent path or through a peer (zero: not heard).
	agents     bool
	beats      agentQueue
	signalOnly bool
	heardSince map[string]time.Time
	// Detection of real host deaths: when each host lost its power (until Vigil
	// opens an incident for it), and the times it took.
	powerLost map[string]time.Time
	detect    []time.Duration
	// crashArmed makes the executor die at the next step (between intent and outcome);
	// crashDown, when set, keeps Vigil down that long after the crash, and crashOn
	// limits the crash to steps of that action (of any host).
	crashArmed string
	crashDown  time.Duration
	crashOn    model.Action
	// downUntil: Vigil is not running (eng nil) until then.
	downUntil  time.Time
	maint      map[string]bool // the operator's intent; Vigil's journal holds what it was told
	maintSeen  map[string]time.Time
	fencedAt   map[string]time.Time
	returnAsks map[string]int
	lastChange time.Time
	// World settings drawn for this seed.
	settings    []string
	offset      time.Duration // Vigil's clock minus the cloud's, at the start
	drift       float64       // and its drift (seconds per second)
	policyOf    map[string]model.Policy
	notify      bool
	notes       []delivery // notifications on their way to Vigil, by time
	powerOnNext bool       // an operator powers on the next host Vigil fences
	exempt      map[string]string
	exemptSeen  map[string]bool
	fab         fabricWatch // sim/fabric.go
	// lieEnd: hosts whose BMC lies "off", until when; lieSeen: how long each lie was
	// in Vigil's view (watchLies).
	lieEnd  map[string]time.Time
	lieSeen map[string]time.Duration
	// grp: clusters defined in the cloud, edited mid-run (the "groups" setting, groups.go).
	grp *groupsWorld
	// place: the placement setting (placement.go); nil when not drawn.
	place *placeWorld
	// rep: the replica mode (sim/replicas.go); nil with one Vigil.
	rep *replicaWorld
}

type delivery struct {
	at time.Time
	n  sim.Notification
}

func newWorld(seed uint64, cfg Config, dbPath string) (*world, error) {
	w := &world{cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x51a)), now: epoch0,
		prot: map[string]bool{}, maint: map[string]bool{}, kinds: map[string]int{},
		maintSeen: map[string]time.Time{}, fencedAt: map[string]time.Time{}, returnAsks: map[string]int{},
		policyOf: map[string]model.Policy{}, exempt: map[string]string{}, exemptSeen: map[string]bool{},
		lieEnd: map[string]time.Time{}, lieSeen: map[string]time.Duration{}}
	// World settings come from their own stream, so that a schedule of the classic
	// fault kinds draws the same faults with or without them.
	set := rand.New(rand.NewPCG(seed, 0x5e77))
	has := func(name string, p float64) bool {
		on := (cfg.Settings == nil || slices.Contains(cfg.Settings, name)) && set.Float64() < p
		if on {
			w.settings = append(w.settings, name)
		}
		return on
	}
	skew := has("clock-skew", 0.6)
	noBMC := has("no-bmc", 0.4)
	policies := has("policies", 0.5)
	w.notify = has("notifications", 0.5)
	resume := has("resume-guests", 0.5)
	fullEvery := time.Minute
	if has("rare-full", 0.5) {
		fullEvery = 5 * time.Minute
	}
	w.agents = has("agents", 0.7)
	w.heardSince, w.powerLost = map[string]time.Time{}, map[string]time.Time{}
	if skew {
		w.offset = []time.Duration{2, -2, 5, -5, 30, -30, 0}[set.IntN(7)] * time.Second
		w.drift = []float64{0, 0, 1e-4, -1e-4, 5e-4, -5e-4}[set.IntN(6)]
		w.settings[slices.Index(w.settings, "clock-skew")] = fmt.Sprintf("clock-skew(%+v,drift %+g)", w.offset, w.drift)
	}
	scfg := sim.Config{ActionLatency: 3 * time.Second, ServiceDownTime: 20 * time.Second, ConductorDelay: 5 * time.Second,
		ResumeGuestsOnBoot: resume, Notifications: w.notify, Seed: seed, CleanupDelay: 3 * time.Second,
		Sleep: func(d time.Duration) { w.now = w.now.Add(d) }}
	w.cloud = sim.New(scfg, w.clock)
	capacity := (cfg.Servers+cfg.Hosts-1)/cfg.Hosts*2 + 1
	for i := range cfg.Hosts {
		name := fmt.Sprintf("h%03d", i+1)
		w.cloud.AddHost(name, fmt.Sprintf("seg%d", i%max(1, cfg.Segments)), capacity)
		w.hosts = append(w.hosts, name)
	}
	if w.agents {
		w.cloud.EnableAgents(sim.AgentConfig{Interval: agentInterval, Threshold: 3, Seed: seed,
			Probed: func(id string) bool { return w.prot[id] }})
	}
	var ids []string
	for i := range cfg.Servers {
		id, err := w.cloud.CreateServer(fmt.Sprintf("vm%04d", i), w.hosts[i%len(w.hosts)])
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		return nil, err
	}
	w.db, w.dbPath = db, dbPath
	pol := model.DefaultPolicy()
	pol.StepTimeout, pol.HostDownGrace, pol.Deadline = 60*time.Second, 10*time.Second, 10*time.Minute
	if w.agents {
		// The probes the agents run, and a ladder per fault: a frozen kernel ignores a
		// soft reboot; an app may need a rebuild.
		pol.GuestAgent = &model.ProbeSpec{Name: "guest-agent", Kind: model.ProbeGuestAgent, Interval: agentInterval, Timeout: 2 * time.Second, Failures: 3}
		pol.Apps = []model.ProbeSpec{{Name: "app", Kind: model.ProbeTCP, Target: "127.0.0.1:80", Interval: agentInterval, Timeout: 2 * time.Second, Failures: 3}}
		pol.Ladders = map[string][]model.Action{
			model.FaultHung:      {model.ActHardReboot, model.ActRebuild, model.ActEvacuate},
			model.FaultAppFailed: {model.ActReboot, model.ActRebuild, model.ActEvacuate},
		}
	}
	pols := map[string]model.Policy{"default": pol}
	clusterPolicy := []string{"default", "default", "default", "default"}
	if policies {
		patient := pol
		patient.Name, patient.HostDownGrace, patient.Deadline = "patient", 5*time.Minute, 20*time.Minute
		sfo := pol
		sfo.Name, sfo.ServiceFenceOnly = "sfo", true
		// An isolated host's servers of the patient cluster are moved away (a live
		// migration, a cold one if refused): the other policies leave them (notify-only).
		patient.Ladders = maps.Clone(pol.Ladders)
		if patient.Ladders == nil {
			patient.Ladders = map[string][]model.Action{}
		}
		patient.Ladders[model.FaultHostIsolated] = []model.Action{model.ActLiveMigrate, model.ActColdMigrate}
		fabric := pol
		fabric.Name, fabric.FenceProof = "fabric", model.FenceProofBMCOrFabric
		pols["patient"], pols["sfo"], pols["fabric"] = patient, sfo, fabric
		clusterPolicy = []string{"default", "patient", "sfo", "fabric"}
	}
	if noBMC {
		h := w.hosts[set.IntN(len(w.hosts))]
		if policies && set.IntN(2) == 0 {
			h = w.hosts[2%len(w.hosts)] // the host of the sfo cluster
		}
		_ = w.cloud.SetFenceEntry(h, "")
		w.settings[slices.Index(w.settings, "no-bmc")] = "no-bmc(" + h + ")"
	}
	// Four clusters over 3/4 of the servers; the rest are unprotected. With several
	// policies, a cluster's servers share hosts (cluster = host index mod 4), so that
	// a host's policy is one cluster's.
	nprot := len(ids) * 3 / 4
	members := make([][]string, 4)
	for i := range nprot {
		c := i % 4
		if policies {
			c = (i % len(w.hosts)) % 4
		}
		members[c] = append(members[c], ids[i])
		w.prot[ids[i]] = true
		w.policyOf[ids[i]] = pols[clusterPolicy[c]]
	}
	var clusters []model.Cluster
	for c := range 4 {
		if len(members[c]) == 0 {
			continue
		}
		clusters = append(clusters, model.Cluster{Name: fmt.Sprintf("c%d", c), Members: members[c], Desired: len(members[c]), Policy: clusterPolicy[c]})
	}
	clusters = w.groupClusters(clusters, pols, ids[nprot:])
	clusters = w.setupPlacement(ids, clusters)
	// MaxParallel 1: the executor takes a round's steps one after another, so the
	// simulated cloud sees its calls in one order and a seed replays exactly; the
	// parallel path is tested on its own (recover, engine).
	if cfg.DryRun {
		dryRun(pols, w.policyOf)
	}
	lim := model.Limits{MaxConcurrent: 8, BrakeFraction: 0.5, BrakeMinHosts: 3, MaxParallel: 1}
	w.drv = &driver{w: w, cloud: w.cloud}
	w.ecfg = engine.Config{Compute: w.drv, Fencer: w.drv, Fabric: w.drv, Store: db, Policies: pols,
		Limits: lim, Now: w.vigilClock, FullEvery: fullEvery, OnEvent: w.onEvent, Sabotage: cfg.Sabotage,
		BMCWait:    -1, // every BMC read waited for: they answer at once on the virtual clock, in one order
		Hook:       recover.Hook{AfterIntent: w.crashHook("after-intent"), AfterAction: w.crashHook("after-action")},
		ReturnWait: 20 * time.Second, Sleep: w.sleep}
	if w.agents {
		w.ecfg.Agents, w.ecfg.AgentInterval = &w.beats, agentInterval
	}
	if cfg.Replicas > 1 {
		w.setupReplicas()
	}
	if err := w.start(); err != nil {
		return nil, err
	}
	if err := w.eng.Tick(context.Background()); err != nil {
		return nil, err
	}
	for _, c := range clusters {
		if err := w.eng.CreateCluster(context.Background(), c); err != nil {
			return nil, err
		}
	}
	if err := w.groupsStart(context.Background()); err != nil {
		return nil, err
	}
	w.sched = schedule(w.rng, cfg, w.hosts, ids, w.prot, w.agents)
	if w.rep != nil {
		if err := w.startOthers(); err != nil {
			return nil, err
		}
		w.replicaSchedule()
	}
	return w, nil
}

// clock is the cloud's clock (the truth); vigilClock is Vigil's, off by the seed's
// offset and drift.
func (w *world) clock() time.Time { return w.now }

func (w *world) vigilClock() time.Time {
	el := w.now.Sub(epoch0)
	return w.now.Add(w.offset + time.Duration(w.drift*float64(el)))
}

// policy is the policy a protected server's cluster follows.
func (w *world) policy(server string) (model.Policy, bool) {
	p, ok := w.policyOf[server]
	return p, ok
}

func (w *world) start() error {
	if w.rep != nil {
		return w.startReplica(w.rep.cur)
	}
	eng, err := engine.New(context.Background(), w.ecfg)
	if err != nil {
		return err
	}
	w.eng = eng // the maintenance an operator set is in the journal: no one sets it again
	return nil
}

func (w *world) crashHook(point string) func(model.Step) error {
	return func(st model.Step) error {
		if w.crashArmed != point {
			return nil
		}
		if w.crashOn != "" && st.Action != w.crashOn {
			return nil
		}
		w.crashArmed = ""
		if w.crashDown > 0 && w.now.After(epoch0.Add(w.cfg.Until-w.cfg.Settle)) {
			// The step it waited for came after the fault window (an outage or a long
			// grace delayed it): a downtime now could outlast the run, and a Vigil that
			// is not running at the end answers nothing (no HA system could). Faults
			// stop at Until minus Settle: it crashes, and restarts at once.
			w.logf("the armed crash comes after the fault window: vigil restarts at once, not after %s down", w.crashDown)
			w.crashDown = 0
		}
		w.logf("vigil crashes %s of %s %s%s", point, st.Action, st.Server, st.Host)
		if w.crashDown > 0 && st.Host != "" {
			// While Vigil is down, the world moves on: the host comes back (its
			// network returns, or an operator powers it on).
			w.insert(fault{at: w.now.Add(w.crashDown/5 + time.Duration(w.rng.Int64N(int64(w.crashDown/2)))), kind: "host-returns", target: st.Host})
		}
		return recover.ErrCrash
	}
}

// insert adds a follow-up to the schedule, in time order.
func (w *world) insert(f fault) {
	i := 0
	for i < len(w.sched) && !w.sched[i].at.After(f.at) {
		i++
	}
	w.sched = slices.Insert(w.sched, i, f)
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%s %s", fmtDur(w.now.Sub(epoch0)), fmt.Sprintf(format, args...)))
}

func (w *world) onEvent(e model.Event) {
	w.lastChange = w.now
	w.onConclusion(e)
	w.onDetection(e)
	w.onDrainClosed(e)
	w.onFenceConfirmedOff(e)
	w.log = append(w.log, fmt.Sprintf("%s %-8s %s %s", fmtDur(e.At.Sub(epoch0)), e.Kind, e.Subject, e.Message))
	if e.Kind == "incident" {
		switch {
		case strings.Contains(e.Message, " opened "):
			w.stats.Incidents++
		case strings.Contains(e.Message, " resolved: "):
			w.stats.Resolved++
		case strings.Contains(e.Message, " escalated: "):
			w.stats.Escalated++
		}
	}
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Millisecond)
	return fmt.Sprintf("%02d:%02d:%02d.%03d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, d.Milliseconds()%1000)
}

func (w *world) violate(inv int, format string, args ...any) {
	v := Violation{Invariant: inv, At: w.now.Sub(epoch0), What: fmt.Sprintf(format, args...)}
	// One report per invariant and subject is enough.
	for _, old := range w.viol {
		if old.Invariant == v.Invariant && old.What == v.What {
			return
		}
	}
	w.viol = append(w.viol, v)
	w.log = append(w.log, fmt.Sprintf("%s VIOLATION %s", fmtDur(v.At), v))
}

// run drives the world to its end: faults, engine ticks, checks.
func (w *world) run() error {
	end := epoch0.Add(w.cfg.Until)
	ctx := context.Background()
	for w.now.Before(end) {
		w.applyFaults()
		if w.eng == nil && !w.now.Before(w.downUntil) && !w.downUntil.IsZero() {
			w.downUntil = time.Time{}
			w.restart("back after its downtime")
		}
		w.fairLies()
		w.deliver(ctx)
		w.pumpBeats()
		if w.rep != nil {
			if err := w.stepReplicas(ctx); err != nil {
				return fmt.Errorf("tick at %s: %w", fmtDur(w.now.Sub(epoch0)), err)
			}
		} else if w.eng != nil {
			err := w.reconcile(ctx)
			switch {
			case errors.Is(err, recover.ErrCrash) && w.crashDown > 0:
				w.down(w.crashDown, "crashed between a step's intent and its outcome")
				w.crashDown = 0
			case errors.Is(err, recover.ErrCrash):
				w.restart("crash between a step's intent and its outcome")
			case errors.Is(err, store.ErrStale):
				w.logf("vigil exits: %v", err)
				w.violate(6, "Vigil lost the ownership of its journal to a second instance and stopped: nothing protects the cloud (%v)", err)
				w.eng = nil
			case err != nil:
				return fmt.Errorf("tick at %s: %w", fmtDur(w.now.Sub(epoch0)), err)
			}
		}
		w.groupsStep(ctx)
		w.checkTick()
		w.checkReplicasTick()
		w.watchHeard()
		t0 := w.now
		w.advance(end)
		w.watchLies(t0)
		if !w.now.Before(end) {
			end = w.answersDue(end)
		}
	}
	w.checkEnd()
	return nil
}

// answersDue is when the run may end: at end, or later while an incident is still
// open within its policy's deadline. A failure is answered by its deadline (recovered,
// or escalated): a policy may grant more than Settle (a 5-minute grace and a 20-minute
// deadline after a fault at the end of the fault window), and judging its incident
// before then would demand an answer the policy does not owe yet. Bounded by the
// longest grace and deadline after Until.
func (w *world) answersDue(end time.Time) time.Time {
	if w.eng == nil {
		return end
	}
	var longest time.Duration
	for _, p := range w.ecfg.Policies {
		longest = max(longest, p.HostDownGrace+p.Deadline)
	}
	limit := epoch0.Add(w.cfg.Until + longest)
	skew := w.minSkew() // incidents are stamped on Vigil's clock
	for _, in := range w.openIncidents() {
		pol, ok := w.ecfg.Policies[in.Policy]
		if !ok {
			pol = w.ecfg.Policies["default"]
		}
		// A minute past the deadline: the planner's next ticks, a step's answer.
		if due := in.Opened.Add(pol.Deadline + time.Minute - skew); due.After(end) {
			end = due
		}
	}
	if end.After(limit) {
		return limit
	}
	return end
}

func (w *world) restart(why string) {
	if w.rep != nil {
		w.restartReplica(why)
		return
	}
	w.stats.Restarts++
	w.logf("vigil restarts (%s)", why)
	if err := w.start(); err != nil {
		w.logf("vigil fails to start: %v", err)
		w.violate(6, "vigil could not restart: %v", err)
	}
}

// down stops Vigil for d: no tick, no notification, while the world moves on.
func (w *world) down(d time.Duration, why string) {
	if w.rep != nil {
		w.downReplica(d, why)
		return
	}
	w.logf("vigil is down for %s (%s)", d, why)
	w.eng = nil
	clear(w.powerLost) // a death while Vigil is down is not a detection to measure
	w.downUntil = w.now.Add(d)
}

// deliver pushes the cloud's notifications to Vigil, some late, some twice, the way
// source/notifications would: a partial observation at the cloud's time of the event.
func (w *world) deliver(ctx context.Context) {
	if !w.notify {
		return
	}
	for _, n := range w.cloud.DrainNotifications() {
		switch r := w.rng.IntN(100); {
		case r < 85:
			w.notes = append(w.notes, delivery{at: w.now, n: n})
		case r < 95:
			w.notes = append(w.notes, delivery{at: w.now.Add(time.Duration(60+w.rng.IntN(540)) * time.Second), n: n})
		default:
			w.notes = append(w.notes, delivery{at: w.now, n: n},
				delivery{at: w.now.Add(time.Duration(60+w.rng.IntN(540)) * time.Second), n: n})
		}
	}
	slices.SortStableFunc(w.notes, func(a, b delivery) int { return a.at.Compare(b.at) })
	for len(w.notes) > 0 && !w.notes[0].at.After(w.now) {
		d := w.notes[0]
		w.notes = w.notes[1:]
		if w.eng == nil {
			continue // nobody listens: lost
		}
		obs := model.Observation{At: d.n.At, Source: "notification", Servers: []model.Server{d.n.Server}}
		if d.n.Server.Status == model.StatusDeleted {
			obs.Deleted = []string{d.n.Server.ID}
		}
		if late := w.now.Sub(d.n.At); late > 30*time.Second {
			w.logf("late notification (%s old): %s %s on %s", late.Round(time.Second), d.n.Server.ID, d.n.Server.Status, d.n.Server.Host)
		}
		w.observeAll(ctx, obs)
	}
}

// advance moves the clock one poll interval, or straight to the next fault when the
// world is quiet (nothing in flight, nothing open, nothing changed for a while):
// the polls in between would observe nothing new.
func (w *world) advance(end time.Time) {
	step := 2 * time.Second
	next := w.now.Add(step)
	quietFor := w.now.Sub(w.lastChange)
	w.signalOnly = false
	if quietFor > time.Minute && len(w.active) == 0 && w.crashArmed == "" && w.eng != nil && len(w.openIncidents()) == 0 && w.cloud.Quiet() {
		target := end
		if len(w.sched) > 0 && w.sched[0].at.Before(target) {
			target = w.sched[0].at
		}
		if len(w.notes) > 0 && w.notes[0].at.Before(target) {
			target = w.notes[0].at
		}
		// Keep one full listing's worth of polls before the next fault.
		t := target.Add(-2 * time.Minute)
		if w.agents && t.After(next) {
			// With agents the skip is capped: jumped over, the span would be one
			// enormous silence of every path of every host to the detector, a gap no
			// real Vigil ever sees while the hosts run, and producing only the last
			// beats before the target would still leave that gap in its history. The
			// quiet span goes on at the agents' interval instead, each step a
			// reconcile on the signals alone (no compute API poll, which would show
			// nothing new): the beats of every interval arrive as they would.
			next, w.signalOnly = w.now.Add(agentInterval), true
		} else if t.After(next) {
			w.keepLeases(t)
			next = t
		}
	}
	w.now = next
}

func (w *world) result() Result {
	r := Result{Seed: w.seed, Violations: slices.Clone(w.viol), Stats: w.stats, Kinds: w.kinds, Settings: w.settings,
		Agents: w.agents, Detect: w.detect, Mutations: len(w.drv.mutations), Decisions: w.decisions()}
	if w.cfg.Log || len(w.viol) > 0 {
		r.Log = w.log
	}
	return r
}
