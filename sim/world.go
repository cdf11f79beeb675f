package sim

import (
	"context"
	"errors"
	"fmt"
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
	Faults   []string
	Sabotage model.Sabotage
	// Dir holds the run's SQLite file ("" makes and removes a temp dir).
	Dir string
	// Log keeps the event log in the result (a sweep only keeps failures).
	Log bool
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
	1: "never two copies",
	2: "no evacuation without a verified fence",
	3: "one recovery per server, no step twice",
	4: "limits and brake",
	5: "no fence of a live host",
	6: "every failure answered",
	7: "everything explained",
}

// Result is one run's outcome.
type Result struct {
	Seed       uint64
	Violations []Violation
	Log        []string
	Stats      Stats
}

// Stats counts what happened in a run.
type Stats struct {
	Faults, Incidents, Resolved, Escalated, Restarts, Ticks int
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

type world struct {
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
	// crashArmed makes the executor die at the next step (between intent and outcome).
	crashArmed string
	maint      map[string]bool
	lastChange time.Time
}

func newWorld(seed uint64, cfg Config, dbPath string) (*world, error) {
	w := &world{cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x51a)), now: epoch0,
		prot: map[string]bool{}, maint: map[string]bool{}}
	scfg := sim.Config{ActionLatency: 3 * time.Second, ServiceDownTime: 20 * time.Second, Seed: seed,
		Sleep: func(d time.Duration) { w.now = w.now.Add(d) }}
	w.cloud = sim.New(scfg, w.clock)
	capacity := (cfg.Servers+cfg.Hosts-1)/cfg.Hosts*2 + 1
	for i := range cfg.Hosts {
		name := fmt.Sprintf("h%03d", i+1)
		w.cloud.AddHost(name, fmt.Sprintf("seg%d", i%max(1, cfg.Segments)), capacity)
		w.hosts = append(w.hosts, name)
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
	w.db = db
	// Four clusters over 3/4 of the servers; the rest are unprotected.
	nprot := len(ids) * 3 / 4
	var clusters []model.Cluster
	for c := range 4 {
		var members []string
		for i := c; i < nprot; i += 4 {
			members = append(members, ids[i])
			w.prot[ids[i]] = true
		}
		clusters = append(clusters, model.Cluster{Name: fmt.Sprintf("c%d", c), Members: members, Desired: len(members), Policy: "default"})
	}
	pol := model.DefaultPolicy()
	pol.StepTimeout, pol.HostDownGrace, pol.Deadline = 60*time.Second, 10*time.Second, 10*time.Minute
	lim := model.Limits{MaxConcurrent: 8, BrakeFraction: 0.5, BrakeMinHosts: 3}
	w.drv = &driver{w: w, cloud: w.cloud}
	w.ecfg = engine.Config{Compute: w.drv, Fencer: w.drv, Store: db, Policies: map[string]model.Policy{"default": pol},
		Limits: lim, Now: w.clock, FullEvery: time.Minute, OnEvent: w.onEvent, Sabotage: cfg.Sabotage,
		Hook: recover.Hook{AfterIntent: w.crashHook("after-intent"), AfterAction: w.crashHook("after-action")}}
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
	w.sched = schedule(w.rng, cfg, w.hosts, ids, w.prot)
	return w, nil
}

func (w *world) clock() time.Time { return w.now }

func (w *world) start() error {
	eng, err := engine.New(context.Background(), w.ecfg)
	if err != nil {
		return err
	}
	w.eng = eng
	for h, on := range w.maint {
		eng.SetMaintenance(h, on)
	}
	return nil
}

func (w *world) crashHook(point string) func(model.Step) error {
	return func(st model.Step) error {
		if w.crashArmed == point {
			w.crashArmed = ""
			w.logf("vigil crashes %s of %s %s%s", point, st.Action, st.Server, st.Host)
			return recover.ErrCrash
		}
		return nil
	}
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%s %s", fmtDur(w.now.Sub(epoch0)), fmt.Sprintf(format, args...)))
}

func (w *world) onEvent(e model.Event) {
	w.lastChange = w.now
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
		if w.eng != nil {
			err := w.eng.Tick(ctx)
			w.stats.Ticks++
			if errors.Is(err, recover.ErrCrash) {
				w.restart("crash between a step's intent and its outcome")
			} else if err != nil {
				return fmt.Errorf("tick at %s: %w", fmtDur(w.now.Sub(epoch0)), err)
			}
		}
		w.checkTick()
		w.advance(end)
	}
	w.checkEnd()
	return nil
}

func (w *world) restart(why string) {
	w.stats.Restarts++
	w.logf("vigil restarts (%s)", why)
	if err := w.start(); err != nil {
		w.logf("vigil fails to start: %v", err)
		w.violate(6, "vigil could not restart: %v", err)
	}
}

// advance moves the clock one poll interval, or straight to the next fault when the
// world is quiet (nothing in flight, nothing open, nothing changed for a while):
// the polls in between would observe nothing new.
func (w *world) advance(end time.Time) {
	step := 2 * time.Second
	next := w.now.Add(step)
	quietFor := w.now.Sub(w.lastChange)
	if quietFor > time.Minute && len(w.active) == 0 && w.crashArmed == "" && len(w.eng.OpenIncidents()) == 0 && w.cloud.Quiet() {
		target := end
		if len(w.sched) > 0 && w.sched[0].at.Before(target) {
			target = w.sched[0].at
		}
		// Keep one full listing's worth of polls before the next fault.
		if t := target.Add(-2 * time.Minute); t.After(next) {
			next = t
		}
	}
	w.now = next
}

func (w *world) result() Result {
	r := Result{Seed: w.seed, Violations: slices.Clone(w.viol), Stats: w.stats}
	if w.cfg.Log || len(w.viol) > 0 {
		r.Log = w.log
	}
	return r
}
