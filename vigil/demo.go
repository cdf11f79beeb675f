package vigil

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/metrics"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// DemoOptions configure `vigil demo`.
type DemoOptions struct {
	Listen     string
	DB         string // "" makes a temporary one
	Seed       uint64
	Duration   time.Duration // 0 runs until ctx ends
	Hosts      int
	Servers    int
	FaultEvery time.Duration
	// FirstFault is when the first fault is injected (default 3 s after the start).
	FirstFault time.Duration
	Out        io.Writer
	// Log receives Vigil's logs (the timeline goes to Out); nil: none.
	Log *slog.Logger
}

// DemoReport sums up a demo run.
type DemoReport struct {
	Faults           int
	ServerRecoveries int
	HostEvacuations  int
	Escalations      int
	// Recovered counts the resolved incidents by the kind of fault injected
	// (crash, hang, app-fail, panic, kill-host...).
	Recovered map[string]int
	// IsolatedNotFenced counts the hosts cut off their management path whose
	// isolation ended with their power never cut; FencedIsolated names those
	// that were fenced all the same: it must stay empty.
	IsolatedNotFenced int
	FencedIsolated    []string
	// DeadByBMC counts the host incidents opened on the proof of a BMC that says
	// off and an agent silent on every path (no grace period waited).
	DeadByBMC         int
	DoubleRunning     []string // servers seen running on two hosts: must stay empty
	Calls             map[string]int
	APIAddr           string
	Token             string // the API token the demo made (and printed) at its start
	RecoveryDurations []time.Duration
}

// demo is one demo run: a simulated cloud, a Vigil on it, a fault injector.
type demo struct {
	o      DemoOptions
	cloud  *sim.Cloud
	start  time.Time
	rng    *rand.Rand
	mu     sync.Mutex
	faults map[string]time.Time // subject -> when the fault was injected
	report DemoReport
	hosts  []string
	prot   []string
	dead   map[string]time.Time
	broken map[string]time.Time
	// isolated: hosts whose management path is cut, since when (restored after
	// isolateFor); kinds: the kind of fault injected on each subject in faults.
	isolated map[string]time.Time
	kinds    map[string]string
}

// agentInterval is the demo's host agents' heartbeat and probe interval: a hung
// guest is judged after 3 failed probes, a silent host within seconds.
const agentInterval = time.Second

// isolateFor is how long a host's management path stays cut.
const isolateFor = 12 * time.Second

// demoBeats is the demo's AgentSource: the engine drains the beats that the
// simulated agents sent, as the HTTP receiver's would. Their arrival time is
// already on Vigil's clock: the simulated cloud runs on the wall clock too.
type demoBeats struct{ cloud *sim.Cloud }

// Drain implements engine.AgentSource.
func (b demoBeats) Drain() []model.AgentBeat { return b.cloud.Beats() }

// Demo runs Vigil on an embedded simulated cloud and injects faults until the
// duration ends or ctx is cancelled, printing a live timeline to o.Out.
func Demo(ctx context.Context, o DemoOptions) (DemoReport, error) {
	if o.Hosts < 3 {
		return DemoReport{}, fmt.Errorf("--hosts: need at least 3, got %d", o.Hosts)
	}
	if o.Servers < 3 {
		return DemoReport{}, fmt.Errorf("--servers: need at least 3, got %d", o.Servers)
	}
	if o.FaultEvery <= 0 {
		o.FaultEvery = 6 * time.Second
	}
	if o.FirstFault <= 0 {
		o.FirstFault = 3 * time.Second
	}
	if o.DB == "" {
		dir, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return DemoReport{}, err
		}
		defer os.RemoveAll(dir)
		o.DB = filepath.Join(dir, "vigil.db")
	}
	d := &demo{o: o, start: time.Now(), rng: rand.New(rand.NewPCG(o.Seed, 0xde70)),
		faults: map[string]time.Time{}, dead: map[string]time.Time{}, broken: map[string]time.Time{},
		isolated: map[string]time.Time{}, kinds: map[string]string{}}
	d.report.Calls, d.report.Recovered = map[string]int{}, map[string]int{}
	cfg := sim.DefaultConfig()
	cfg.ActionLatency, cfg.ServiceDownTime = 1500*time.Millisecond, 3*time.Second
	mets := metrics.New(metrics.Config{})
	cfg.OnCall = mets.SimCall // the simulated cloud's calls, in /metrics
	d.cloud = sim.New(cfg, time.Now)
	clusters := d.build()

	pol := model.DefaultPolicy()
	pol.StepTimeout, pol.HostDownGrace, pol.Deadline = 10*time.Second, 2*time.Second, 3*time.Minute
	// What the agents probe in each protected guest, and a ladder per fault: a
	// frozen kernel ignores a soft reboot, an application gets a clean restart first.
	pol.GuestAgent = &model.ProbeSpec{Name: "guest-agent", Kind: model.ProbeGuestAgent, Interval: agentInterval, Timeout: agentInterval / 2, Failures: 3}
	pol.Apps = []model.ProbeSpec{{Name: "app", Kind: model.ProbeTCP, Target: "127.0.0.1:80", Interval: agentInterval, Timeout: agentInterval / 2, Failures: 3}}
	pol.Ladders = map[string][]model.Action{
		model.FaultHung:      {model.ActHardReboot, model.ActRebuild, model.ActEvacuate},
		model.FaultPanicked:  {model.ActHardReboot, model.ActRebuild, model.ActEvacuate},
		model.FaultAppFailed: {model.ActReboot, model.ActHardReboot, model.ActRebuild},
	}
	conf := DefaultConfig()
	conf.Policies["default"] = pol
	// Anyone may look at the demo (the dashboard, curl); a change takes the token
	// printed below, as on a real Vigil.
	conf.Auth.OpenReads = true
	app, err := Start(ctx, Options{Listen: o.Listen, DB: o.DB, Interval: 500 * time.Millisecond, FullEvery: 5 * time.Second,
		Config: conf, Compute: d.cloud, Fencer: d.cloud, OnEvent: d.onEvent, Agents: demoBeats{d.cloud}, Metrics: mets,
		Log: cmp.Or(o.Log, slog.New(slog.DiscardHandler))})
	if err != nil {
		return DemoReport{}, err
	}
	d.report.APIAddr = app.Addr()
	// A demo run on a kept --db replaces the last run's token.
	if err := app.Store.RevokeToken(ctx, "demo", time.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		app.Close()
		return DemoReport{}, err
	}
	token, err := app.CreateToken(ctx, "demo")
	if err != nil {
		app.Close()
		return DemoReport{}, err
	}
	d.report.Token = token
	if err := app.Engine.Tick(ctx); err != nil {
		app.Close()
		return DemoReport{}, err
	}
	for _, c := range clusters {
		if c.Name == "cache" {
			// One cluster is a Heat stack's servers: its members follow the stack.
			c.Source = &model.ClusterSource{Kind: model.SourceHeatStack, Ref: d.cloud.CreateStack("cache", nil, c.Members...)}
			c.Members = nil
		}
		if err := app.Engine.CreateCluster(ctx, c); err != nil {
			app.Close()
			return DemoReport{}, err
		}
	}
	d.printf("Vigil demo: %d hosts in 2 segments, %d servers, clusters %s; seed %d\n", len(d.hosts), o.Servers, names(clusters), o.Seed)
	d.printf("Dashboard on http://%s/ui/  (clusters, hosts, live incidents and why)\n", app.Addr())
	d.printf("REST API on http://%s  (try: curl http://%s/v1/clusters, or vigil ctl status --server http://%s)\n", app.Addr(), app.Addr(), app.Addr())
	d.printf("reads are open; a change needs this token (shown once): export VIGIL_TOKEN=%s\n\n", token)

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx) }()
	d.inject(ctx, app)
	err = <-runErr

	d.mu.Lock()
	defer d.mu.Unlock()
	for id, copies := range d.cloud.Copies() {
		if len(copies) > 1 {
			d.report.DoubleRunning = append(d.report.DoubleRunning, id)
		}
	}
	for h := range d.isolated {
		// Still cut off at the end: only whether it was fenced meanwhile is told.
		if p := d.cloud.HostPower(h); p != model.PowerOn {
			d.report.FencedIsolated = append(d.report.FencedIsolated, h)
		}
	}
	d.report.Calls = d.cloud.Calls()
	d.summary()
	if err == nil && len(d.report.DoubleRunning) > 0 {
		err = fmt.Errorf("invariant broken: servers running twice: %v", d.report.DoubleRunning)
	}
	if err == nil && len(d.report.FencedIsolated) > 0 {
		err = fmt.Errorf("invariant broken: isolated hosts fenced though their agents were heard: %v", d.report.FencedIsolated)
	}
	return d.report, err
}

func names(cs []model.Cluster) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s (%d)", c.Name, len(c.Members)))
	}
	return strings.Join(out, ", ")
}

// build creates the hosts and servers and returns the clusters to protect them.
func (d *demo) build() []model.Cluster {
	per := (d.o.Servers + d.o.Hosts - 1) / d.o.Hosts
	for i := 1; i <= d.o.Hosts; i++ {
		name := fmt.Sprintf("host-%02d", i)
		seg := "rack-a"
		if i > d.o.Hosts/2 {
			seg = "rack-b"
		}
		d.cloud.AddHost(name, seg, per*3)
		d.hosts = append(d.hosts, name)
	}
	// A host agent on every host, heartbeating on two paths (management, storage)
	// and probing the protected guests (their guest agent and their app), as the
	// policy below asks.
	protected := map[string]bool{}
	d.cloud.EnableAgents(sim.AgentConfig{Interval: agentInterval, Threshold: 3, Seed: d.o.Seed,
		Probed: func(id string) bool { return protected[id] }})
	var ids []string
	for i := 0; i < d.o.Servers; i++ {
		id, err := d.cloud.CreateServer(fmt.Sprintf("vm-%03d", i+1), d.hosts[i%len(d.hosts)])
		if err != nil {
			panic(err) // capacity is three times what is needed
		}
		ids = append(ids, id)
	}
	// Three clusters over 7/8 of the servers; the rest are unprotected.
	prot := ids[:max(3, len(ids)*7/8)]
	d.prot = prot
	for _, id := range prot {
		protected[id] = true // read by the agents only after the demo starts
	}
	n := len(prot)
	return []model.Cluster{
		{Name: "web", Members: prot[:n*3/7], Desired: n * 3 / 7, Policy: "default"},
		{Name: "db", Members: prot[n*3/7 : n*5/7], Desired: n*5/7 - n*3/7, Policy: "default"},
		{Name: "cache", Members: prot[n*5/7:], Desired: n - n*5/7, Policy: "default"},
	}
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.o.Out, format, args...)
}

func (d *demo) stamp(t time.Time) string {
	return fmt.Sprintf("%6.1fs", t.Sub(d.start).Seconds())
}

// inject causes faults on a schedule drawn from the seed until ctx ends. The first
// four are fixed (a server crash, a host power loss, a host cut off its management
// network, a hung guest) so every run of half a minute shows them.
func (d *demo) inject(ctx context.Context, app *App) {
	next := d.start.Add(d.o.FirstFault)
	plan := []string{"crash", "kill-host", "isolate", "hang"}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastHealth := ""
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.repair(now)
			if h := healthLine(app.Engine.Clusters()); h != lastHealth {
				d.mu.Lock()
				d.printf("%s  HEALTH   %s\n", d.stamp(now), h)
				d.mu.Unlock()
				lastHealth = h
			}
			if now.Before(next) {
				continue
			}
			kind := ""
			if len(plan) > 0 {
				kind, plan = plan[0], plan[1:]
			} else {
				kind = d.pick()
			}
			d.fault(now, kind)
			next = now.Add(d.o.FaultEvery)
		}
	}
}

func healthLine(cs []model.ClusterStatus) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s %d/%d", c.Name, c.Health, c.Healthy, c.Desired))
	}
	return strings.Join(parts, " · ")
}

func (d *demo) pick() string {
	r := d.rng.Float64()
	switch {
	case r < 0.20:
		return "crash"
	case r < 0.28:
		return "power-off"
	case r < 0.34:
		return "owner-stop"
	case r < 0.42:
		return "stubborn"
	case r < 0.52:
		return "hang"
	case r < 0.62:
		return "app-fail"
	case r < 0.72:
		return "panic"
	case r < 0.82:
		return "isolate"
	default:
		return "kill-host"
	}
}

// fault injects one fault of the given kind on a victim drawn from the seed.
func (d *demo) fault(now time.Time, kind string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faultLocked(now, kind)
}

func (d *demo) faultLocked(now time.Time, kind string) {
	victim := func() (string, bool) {
		for range 20 {
			id := d.prot[d.rng.IntN(len(d.prot))]
			// A server of a dead or cut-off host is its host's business; one already
			// faulted is being recovered.
			s, ok := d.cloud.Server(id)
			if ok && s.Status == model.StatusActive && s.TaskState == "" && d.dead[s.Host].IsZero() && d.isolated[s.Host].IsZero() &&
				d.faults["server/"+id].IsZero() && d.cloud.GuestTrouble(id) == "" {
				return id, true
			}
		}
		return "", false
	}
	switch kind {
	case "crash", "power-off", "owner-stop", "stubborn":
		id, ok := victim()
		if !ok {
			return
		}
		s, _ := d.cloud.Server(id)
		var what string
		switch kind {
		case "crash":
			_ = d.cloud.Crash(id)
			what = "crashed (ERROR)"
		case "power-off":
			_ = d.cloud.PowerOffBehindBack(id)
			what = "powered off behind its owner's back (SHUTOFF)"
		case "owner-stop":
			_ = d.cloud.Stop(id)
			d.printf("%s  FAULT    %s (%s on %s) stopped by its owner: Vigil must leave it alone\n", d.stamp(now), id, s.Name, s.Host)
			d.report.Faults++
			return
		case "stubborn":
			d.cloud.BreakServer(id, true)
			d.broken[id] = now
			_ = d.cloud.Crash(id)
			what = "crashed, and its reboots fail for a while (watch the ladder)"
		}
		d.faults["server/"+id], d.kinds["server/"+id] = now, kind
		d.report.Faults++
		d.printf("%s  FAULT    %s (%s on %s) %s\n", d.stamp(now), id, s.Name, s.Host, what)
	case "hang", "app-fail", "panic":
		// Faults only the host agents see: Nova keeps saying ACTIVE.
		id, ok := victim()
		if !ok {
			return
		}
		s, _ := d.cloud.Server(id)
		var what string
		var err error
		switch kind {
		case "hang":
			err = d.cloud.HangGuest(id)
			what = "guest hung: its kernel froze, Nova still says ACTIVE, its guest agent stops answering (only a hard reboot cures it)"
		case "app-fail":
			err = d.cloud.FailApp(id, false)
			what = "app failed: the guest runs, its application stops answering its probe (a clean reboot restarts it)"
		case "panic":
			err = d.cloud.PanicGuest(id, 0)
			what = "guest panicked: libvirt says crashed/panicked, Nova still says ACTIVE and never notices"
		}
		if err != nil {
			return
		}
		d.faults["server/"+id], d.kinds["server/"+id] = now, kind
		d.report.Faults++
		d.printf("%s  FAULT    %s (%s on %s) %s\n", d.stamp(now), id, s.Name, s.Host, what)
	case "kill-host", "isolate":
		// One host dead and one cut off at a time, and never the last ones standing.
		var alive []string
		for _, h := range d.hosts {
			if d.dead[h].IsZero() && d.isolated[h].IsZero() {
				alive = append(alive, h)
			}
		}
		if kind == "kill-host" && len(d.dead) > 0 || kind == "isolate" && len(d.isolated) > 0 || len(alive) < 4 {
			d.faultLocked(now, map[string]string{"kill-host": "crash", "isolate": "hang"}[kind])
			return
		}
		h := alive[d.rng.IntN(len(alive))]
		d.report.Faults++
		if kind == "isolate" {
			// Nova's compute reports go over the management network too: Nova loses
			// the host; the agent's beats still come over the storage network.
			_ = d.cloud.CutPath(h, model.PathManagement, true, true)
			d.isolated[h] = now
			d.printf("%s  FAULT    %s cut off its management network (Nova loses its compute service; its agent is still heard on the storage path): alive, it must NOT be fenced\n", d.stamp(now), h)
			return
		}
		_ = d.cloud.KillHost(h)
		d.dead[h] = now
		d.faults["host/"+h], d.kinds["host/"+h] = now, kind
		d.printf("%s  FAULT    %s lost power (its servers are gone; Nova does not know yet, but its agent falls silent on both paths and its BMC says off: dead, no grace)\n", d.stamp(now), h)
	}
}

// endIsolation restores a cut-off host's management path and says whether the
// host kept its power all along (it must: its agent was heard).
func (d *demo) endIsolation(now time.Time, h string) {
	_ = d.cloud.CutPath(h, model.PathManagement, false, true)
	delete(d.isolated, h)
	if p := d.cloud.HostPower(h); p != model.PowerOn {
		d.report.FencedIsolated = append(d.report.FencedIsolated, h)
		d.printf("%s  REPAIR   %s management path restored, but it WAS FENCED while alive (power %s): a false fence\n", d.stamp(now), h, p)
		_ = d.cloud.PowerOnHost(h)
		return
	}
	d.report.IsolatedNotFenced++
	d.printf("%s  REPAIR   %s management path restored by the operator: it was NOT fenced (power on throughout; its %d servers still run on it)\n",
		d.stamp(now), h, len(d.cloud.ServersOn(h)))
}

// repair plays the operator: a dead host is powered on and returned to service after
// 20 s; a cut-off host's management path is restored after isolateFor; a stubborn
// server's actions work again after 8 s.
func (d *demo) repair(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for h, at := range d.dead {
		if now.Sub(at) > 20*time.Second {
			_ = d.cloud.PowerOnHost(h)
			_ = d.cloud.ForceDown(context.Background(), h, false)
			delete(d.dead, h)
			d.printf("%s  REPAIR   %s powered on and returned to service by the operator\n", d.stamp(now), h)
		}
	}
	for h, at := range d.isolated {
		if now.Sub(at) > isolateFor {
			d.endIsolation(now, h)
		}
	}
	for id, at := range d.broken {
		if now.Sub(at) > 8*time.Second {
			d.cloud.BreakServer(id, false)
			delete(d.broken, id)
		}
	}
}

// onEvent prints the engine's journal as a timeline.
func (d *demo) onEvent(e model.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	label := strings.ToUpper(e.Kind)
	msg := e.Message
	switch e.Kind {
	case "verdict":
		if strings.Contains(msg, " healthy:") || strings.Contains(msg, " recovering:") || strings.Contains(msg, "host up:") || strings.HasPrefix(msg, "agent up:") {
			return
		}
	case "step":
		if strings.HasPrefix(msg, "intent: ") {
			msg = "→ " + strings.TrimPrefix(msg, "intent: ")
			if i := strings.Index(msg, " — "); i > 0 {
				msg = msg[:i]
			}
		}
		if strings.HasPrefix(msg, "issued: ") {
			return
		}
	case "incident":
		if strings.Contains(msg, " resolved:") {
			if at, ok := d.faults[e.Subject]; ok {
				took := e.At.Sub(at)
				msg += fmt.Sprintf("  [%.1fs after the fault]", took.Seconds())
				d.report.RecoveryDurations = append(d.report.RecoveryDurations, took)
				d.report.Recovered[d.kinds[e.Subject]]++
				delete(d.faults, e.Subject)
				delete(d.kinds, e.Subject)
			}
			if strings.HasPrefix(e.Subject, "host/") {
				d.report.HostEvacuations++
			} else if strings.Contains(msg, "after ") {
				d.report.ServerRecoveries++
			}
		}
		if strings.HasPrefix(e.Subject, "host/") && strings.Contains(msg, " opened (host-bmc-off,") {
			d.report.DeadByBMC++
		}
		if strings.Contains(msg, " escalated:") {
			d.report.Escalations++
		}
	case "cluster":
		return
	}
	d.printf("%s  %-8s %-17s %s\n", d.stamp(e.At), label, e.Subject, msg)
}

func (d *demo) summary() {
	r := &d.report
	d.printf("\nSummary: %d faults injected; %d servers recovered in place; %d hosts fenced and evacuated; %d escalations\n",
		r.Faults, r.ServerRecoveries, r.HostEvacuations, r.Escalations)
	if len(r.RecoveryDurations) > 0 {
		ds := slices.Clone(r.RecoveryDurations)
		slices.Sort(ds)
		d.printf("Fault to recovered: median %.1fs, max %.1fs (over %d recoveries)\n",
			ds[len(ds)/2].Seconds(), ds[len(ds)-1].Seconds(), len(ds))
	}
	d.printf("Seen by the host agents: %d hung guests, %d app failures, %d guest panics recovered (Nova said ACTIVE throughout); %d hosts proven dead by their BMC (no grace period); %d hosts cut off their management network left alone (never fenced)\n",
		r.Recovered["hang"], r.Recovered["app-fail"], r.Recovered["panic"], r.DeadByBMC, r.IsolatedNotFenced)
	if len(r.FencedIsolated) > 0 {
		d.printf("No false fencing: BROKEN for %v\n", r.FencedIsolated)
	}
	d.printf("Never two copies: %s\n", map[bool]string{true: "held", false: fmt.Sprintf("BROKEN for %v", r.DoubleRunning)}[len(r.DoubleRunning) == 0])
	d.printf("Compute API calls: %d list-servers, %d list-hosts (bulk: one each per poll, whatever the number of servers)\n",
		r.Calls["list-servers"], r.Calls["list-hosts"])
}
