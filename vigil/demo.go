package vigil

import (
	"context"
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
	"github.com/vigil-ha/vigil/model"
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
	Out        io.Writer
}

// DemoReport sums up a demo run.
type DemoReport struct {
	Faults            int
	ServerRecoveries  int
	HostEvacuations   int
	Escalations       int
	DoubleRunning     []string // servers seen running on two hosts: must stay empty
	Calls             map[string]int
	APIAddr           string
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
}

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
	if o.DB == "" {
		dir, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return DemoReport{}, err
		}
		defer os.RemoveAll(dir)
		o.DB = filepath.Join(dir, "vigil.db")
	}
	d := &demo{o: o, start: time.Now(), rng: rand.New(rand.NewPCG(o.Seed, 0xde70)),
		faults: map[string]time.Time{}, dead: map[string]time.Time{}, broken: map[string]time.Time{}}
	d.report.Calls = map[string]int{}
	cfg := sim.DefaultConfig()
	cfg.ActionLatency, cfg.ServiceDownTime = 1500*time.Millisecond, 3*time.Second
	d.cloud = sim.New(cfg, time.Now)
	clusters := d.build()

	pol := model.DefaultPolicy()
	pol.StepTimeout, pol.HostDownGrace, pol.Deadline = 10*time.Second, 2*time.Second, 3*time.Minute
	conf := DefaultConfig()
	conf.Policies["default"] = pol
	app, err := Start(ctx, Options{Listen: o.Listen, DB: o.DB, Interval: 500 * time.Millisecond, FullEvery: 5 * time.Second,
		Config: conf, Compute: d.cloud, Fencer: d.cloud, OnEvent: d.onEvent,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return DemoReport{}, err
	}
	d.report.APIAddr = app.Addr()
	if err := app.Engine.Tick(ctx); err != nil {
		app.Close()
		return DemoReport{}, err
	}
	for _, c := range clusters {
		if err := app.Engine.CreateCluster(ctx, c); err != nil {
			app.Close()
			return DemoReport{}, err
		}
	}
	d.printf("Vigil demo: %d hosts in 2 segments, %d servers, clusters %s; seed %d\n", len(d.hosts), o.Servers, names(clusters), o.Seed)
	d.printf("REST API on http://%s  (try: curl http://%s/v1/clusters, or vigil ctl status --server http://%s)\n\n", app.Addr(), app.Addr(), app.Addr())

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
	d.report.Calls = d.cloud.Calls()
	d.summary()
	if err == nil && len(d.report.DoubleRunning) > 0 {
		err = fmt.Errorf("invariant broken: servers running twice: %v", d.report.DoubleRunning)
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
// two are fixed (a server crash, then a host power loss) so every run shows both.
func (d *demo) inject(ctx context.Context, app *App) {
	next := d.start.Add(3 * time.Second)
	plan := []string{"crash", "kill-host"}
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
	case r < 0.40:
		return "crash"
	case r < 0.55:
		return "power-off"
	case r < 0.65:
		return "owner-stop"
	case r < 0.75:
		return "stubborn"
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
			if s, ok := d.cloud.Server(id); ok && s.Status == model.StatusActive && d.dead[s.Host].IsZero() {
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
		d.faults["server/"+id] = now
		d.report.Faults++
		d.printf("%s  FAULT    %s (%s on %s) %s\n", d.stamp(now), id, s.Name, s.Host, what)
	case "kill-host":
		var alive []string
		for _, h := range d.hosts {
			if d.dead[h].IsZero() {
				alive = append(alive, h)
			}
		}
		if len(d.dead) > 0 || len(alive) < 3 {
			d.faultLocked(now, "crash") // one host down at a time
			return
		}
		h := alive[d.rng.IntN(len(alive))]
		_ = d.cloud.KillHost(h)
		d.dead[h] = now
		d.faults["host/"+h] = now
		d.report.Faults++
		d.printf("%s  FAULT    %s lost power (its servers are gone; the cloud does not know yet)\n", d.stamp(now), h)
	}
}

// repair plays the operator: a dead host is powered on and returned to service after
// 20 s; a stubborn server's actions work again after 8 s.
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
		if strings.Contains(msg, " healthy:") || strings.Contains(msg, " recovering:") || strings.Contains(msg, "host up:") {
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
				delete(d.faults, e.Subject)
			}
			if strings.HasPrefix(e.Subject, "host/") {
				d.report.HostEvacuations++
			} else if strings.Contains(msg, "after ") {
				d.report.ServerRecoveries++
			}
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
	d.printf("Never two copies: %s\n", map[bool]string{true: "held", false: fmt.Sprintf("BROKEN for %v", r.DoubleRunning)}[len(r.DoubleRunning) == 0])
	d.printf("Compute API calls: %d list-servers, %d list-hosts (bulk: one each per poll, whatever the number of servers)\n",
		r.Calls["list-servers"], r.Calls["list-hosts"])
}
