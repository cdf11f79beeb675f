package vigil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// BenchScaleOptions size `vigil bench scale`: one Vigil (the real engine, its
// SQLite store in a temporary directory, its real loop) watching a simulated cloud
// of Hosts hosts and Servers servers, all protected, whose API answers with a
// real control plane's latencies and pages (sim.DefaultLatency).
type BenchScaleOptions struct {
	Hosts, Servers int
	// Warmup runs after the first full observation, before measuring; Duration is
	// the measured window, during which Crashes servers crash and one host dies.
	Warmup, Duration time.Duration
	Crashes          int
	// Interval and FullEvery are Vigil's poll interval and full-listing interval
	// (`vigil serve`'s defaults: 2 s, 5 min).
	Interval, FullEvery time.Duration
	NoLatency           bool // instant API answers (to tell Vigil's own cost from the waits)
	// HostDownGrace overrides the default policy's (0: kept), for quick smoke runs.
	HostDownGrace time.Duration
	Seed          uint64
	// Progress receives a progress bar (nil: none); ProfileDir, when set, receives
	// CPU profiles of the start and of the measured window, and a heap profile at
	// the end.
	Progress   io.Writer
	ProfileDir string
}

func (o *BenchScaleOptions) defaults() {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.FullEvery <= 0 {
		o.FullEvery = 5 * time.Minute
	}
	if o.Crashes < 0 {
		o.Crashes = 0
	}
}

// BenchScaleReport is what `vigil bench scale` measured.
type BenchScaleReport struct {
	Machine  Machine       `json:"machine"`
	Hosts    int           `json:"hosts"`
	Servers  int           `json:"servers"`
	Latency  string        `json:"api_latency"`
	Interval time.Duration `json:"poll_interval_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Window   time.Duration `json:"window_ns"`
	// BuildCloud: creating the simulated cloud (not Vigil's time). StartToFirstFull:
	// from Vigil's start to its first full observation of the cloud; ToProtected:
	// until every server is protected (clusters created) and observed again.
	BuildCloud       time.Duration `json:"build_cloud_ns"`
	StartToFirstFull time.Duration `json:"start_to_first_full_ns"`
	ToProtected      time.Duration `json:"start_to_protected_ns"`
	// CPU is the process's CPU time over the window in cores (1.0 = one core busy):
	// Vigil and the simulated cloud it runs beside (see the profiles for the split).
	CPU          float64 `json:"cpu_cores"`
	StartCPU     float64 `json:"start_cpu_seconds"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	HeapMiB      float64 `json:"heap_mib"`
	Polls        int     `json:"polls"`
	PollsPerMin  float64 `json:"polls_per_minute"`
	FullListings int     `json:"full_listings"`
	// CallsPerMinute and CallsPerPoll count the cloud API calls of the window by
	// kind (list-servers-page: every page of a server listing, the first included).
	CallsPerMinute map[string]float64 `json:"calls_per_minute"`
	CallsPerPoll   map[string]float64 `json:"calls_per_poll"`
	Faults         []BenchFault       `json:"faults"`
	Detection      Percentiles        `json:"detection"`
	Recovery       Percentiles        `json:"recovery"`
}

// BenchFault is one injected fault and when Vigil saw and cured it (zero: not yet
// when the window ended).
type BenchFault struct {
	Kind      string        `json:"kind"` // crash, host-death
	Subject   string        `json:"subject"`
	Detected  time.Duration `json:"detected_ns,omitempty"`
	Recovered time.Duration `json:"recovered_ns,omitempty"`
	at        time.Time
}

// Percentiles of a set of durations.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Percentiles{N: len(ds), P50: at(0.5), P99: at(0.99), Max: ds[len(ds)-1]}
}

// faultLog follows the journal for the faults injected: the first verdict or
// incident on a subject detects it, its incident's resolution recovers it.
type faultLog struct {
	mu     sync.Mutex
	faults map[string]*BenchFault // by subject (server/ID, host/NAME)
	events []model.Event          // kept only when keep is set (the storm's)
	keep   bool
}

func (l *faultLog) inject(kind, subject string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults[subject] = &BenchFault{Kind: kind, Subject: subject, at: at}
}

func (l *faultLog) onEvent(e model.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keep {
		l.events = append(l.events, e)
	}
	f := l.faults[e.Subject]
	if f == nil || e.At.Before(f.at) {
		return
	}
	switch {
	case f.Detected == 0 && (e.Kind == "verdict" || e.Kind == "incident" && strings.Contains(e.Message, " opened ")):
		f.Detected = max(e.At.Sub(f.at), time.Nanosecond)
	case f.Recovered == 0 && e.Kind == "incident" && strings.Contains(e.Message, " resolved"):
		f.Recovered = max(e.At.Sub(f.at), time.Nanosecond)
	}
}

func (l *faultLog) results() ([]BenchFault, Percentiles, Percentiles) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []BenchFault
	var det, rec []time.Duration
	for _, k := range slices.Sorted(maps.Keys(l.faults)) {
		f := *l.faults[k]
		out = append(out, f)
		if f.Detected > 0 {
			det = append(det, f.Detected)
		}
		if f.Recovered > 0 {
			rec = append(rec, f.Recovered)
		}
	}
	return out, percentiles(det), percentiles(rec)
}

// benchCloud is a simulated cloud for the benches: hosts host-00001... in segments
// of segSize, perHost servers on each (capacity twice that), every server in a
// cluster of at most 1,000.
type benchCloud struct {
	cloud    *sim.Cloud
	hosts    []string
	servers  []string
	segments map[string][]string
	clusters []model.Cluster
}

func newBenchCloud(hosts, servers, segSize int, latency *sim.Latency) (*benchCloud, error) {
	cfg := sim.DefaultConfig()
	cfg.Latency = latency
	// The cloud is built on a clock an hour behind, then runs on the wall clock:
	// its servers were created long before Vigil starts, as in a real cloud (else
	// the changes-since listings just after the start list them all again).
	var back atomic.Int64
	back.Store(int64(time.Hour))
	now := func() time.Time { return time.Now().Add(-time.Duration(back.Load())) }
	defer back.Store(0)
	b := &benchCloud{cloud: sim.New(cfg, now), segments: map[string][]string{}}
	per := max(1, (servers+hosts-1)/hosts)
	for i := 1; i <= hosts; i++ {
		h := BenchHost(i)
		seg := fmt.Sprintf("seg-%02d", (i-1)/segSize)
		b.cloud.AddHost(h, seg, 2*per)
		b.hosts = append(b.hosts, h)
		b.segments[seg] = append(b.segments[seg], h)
	}
	for i := range servers {
		id, err := b.cloud.CreateServer(fmt.Sprintf("vm-%06d", i+1), b.hosts[i%hosts])
		if err != nil {
			return nil, fmt.Errorf("build the simulated cloud: %w", err)
		}
		b.servers = append(b.servers, id)
	}
	for i := 0; i < len(b.servers); i += 1000 {
		m := b.servers[i:min(i+1000, len(b.servers))]
		b.clusters = append(b.clusters, model.Cluster{Name: fmt.Sprintf("c%04d", i/1000), Members: slices.Clone(m), Desired: len(m), Policy: "default"})
	}
	return b, nil
}

// benchVigil is a started Vigil on a bench cloud, every server protected.
type benchVigil struct {
	app    *App
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// startBenchVigil starts Vigil, observes the cloud once (first), protects every
// server and observes it again (protected), then runs its loop.
func startBenchVigil(ctx context.Context, b *benchCloud, o BenchScaleOptions, onEvent func(model.Event)) (v *benchVigil, first, protected time.Duration, err error) {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return nil, 0, 0, err
	}
	conf := DefaultConfig()
	if o.HostDownGrace > 0 {
		pol := conf.Policies["default"]
		pol.HostDownGrace = o.HostDownGrace
		conf.Policies["default"] = pol
	}
	t0 := time.Now()
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(dir, "vigil.db"), Interval: o.Interval,
		FullEvery: o.FullEvery, Config: conf, Compute: b.cloud, Fencer: b.cloud, OnEvent: onEvent,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, 0, err
	}
	fail := func(err error) (*benchVigil, time.Duration, time.Duration, error) {
		app.Close()
		os.RemoveAll(dir)
		return nil, 0, 0, err
	}
	if err := app.Engine.Tick(ctx); err != nil {
		return fail(fmt.Errorf("first observation: %w", err))
	}
	first = time.Since(t0)
	for _, c := range b.clusters {
		if err := app.Engine.CreateCluster(ctx, c); err != nil {
			return fail(fmt.Errorf("protect cluster %s: %w", c.Name, err))
		}
	}
	if err := app.Engine.Tick(ctx); err != nil {
		return fail(fmt.Errorf("observe the protected cloud: %w", err))
	}
	protected = time.Since(t0)
	rctx, cancel := context.WithCancel(ctx)
	v = &benchVigil{app: app, dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { v.done <- app.Run(rctx) }()
	return v, first, protected, nil
}

func (v *benchVigil) stop() error {
	v.cancel()
	err := <-v.done
	os.RemoveAll(v.dir)
	return err
}

// BenchScale runs `vigil bench scale`.
func BenchScale(ctx context.Context, o BenchScaleOptions) (BenchScaleReport, error) {
	o.defaults()
	if o.Hosts < 3 || o.Servers < o.Hosts || o.Duration <= 0 {
		return BenchScaleReport{}, fmt.Errorf("bench scale: need at least 3 hosts, at least as many servers as hosts, and a positive duration")
	}
	rep := BenchScaleReport{Machine: ThisMachine(), Hosts: o.Hosts, Servers: o.Servers, Interval: o.Interval, Warmup: o.Warmup, Latency: "none"}
	var lat *sim.Latency
	if !o.NoLatency {
		lat = sim.DefaultLatency(o.Seed)
		rep.Latency = fmt.Sprintf("%s-%s per call, pages of %d servers", lat.Min, lat.Max, lat.PageSize)
	}
	bar := newProgress(o.Progress, fmt.Sprintf("scale %d/%d", o.Hosts, o.Servers))
	defer bar.done()
	bar.phase("building the simulated cloud", 0)
	t0 := time.Now()
	b, err := newBenchCloud(o.Hosts, o.Servers, 500, lat)
	if err != nil {
		return rep, err
	}
	rep.BuildCloud = time.Since(t0)
	log := &faultLog{faults: map[string]*BenchFault{}}
	stopProfile := startCPUProfile(o.ProfileDir, "cpu-start.pprof")
	bar.phase("starting Vigil: first full observation", 0)
	cpu0 := cpuTime()
	v, first, protected, err := startBenchVigil(ctx, b, o, log.onEvent)
	stopProfile()
	if err != nil {
		return rep, err
	}
	rep.StartCPU = (cpuTime() - cpu0).Seconds()
	rep.StartToFirstFull, rep.ToProtected = first, protected
	bar.phase("warm-up", o.Warmup)
	if !sleepCtx(ctx, o.Warmup, bar) {
		return rep, errorsJoin(ctx.Err(), v.stop())
	}
	calls0 := b.cloud.Calls()
	cpu0 = cpuTime()
	t0 = time.Now()
	stopProfile = startCPUProfile(o.ProfileDir, "cpu.pprof")
	bar.phase("measuring (faults: crashes, one host death)", o.Duration)
	injectScaleFaults(ctx, b, log, o, t0, bar)
	stopProfile()
	rep.Window = time.Since(t0)
	rep.CPU = (cpuTime() - cpu0).Seconds() / rep.Window.Seconds()
	calls := b.cloud.Calls()
	writeHeapProfile(o.ProfileDir)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	rep.PeakRSSMiB = maxRSSMiB()
	err = v.stop()
	rep.Polls = calls["list-hosts"] - calls0["list-hosts"]
	rep.FullListings = fullListings(calls, calls0, o.Servers, lat)
	rep.PollsPerMin = float64(rep.Polls) / rep.Window.Minutes()
	rep.CallsPerMinute, rep.CallsPerPoll = map[string]float64{}, map[string]float64{}
	for k, n := range calls {
		d := n - calls0[k]
		if d == 0 {
			continue
		}
		rep.CallsPerMinute[k] = float64(d) / rep.Window.Minutes()
		if rep.Polls > 0 {
			rep.CallsPerPoll[k] = float64(d) / float64(rep.Polls)
		}
	}
	rep.Faults, rep.Detection, rep.Recovery = log.results()
	return rep, err
}

// fullListings estimates the full listings of the window from the pages: an
// incremental listing is one page.
func fullListings(calls, calls0 map[string]int, servers int, lat *sim.Latency) int {
	if lat == nil || lat.PageSize <= 0 {
		return 0
	}
	pages := calls["list-servers-page"] - calls0["list-servers-page"]
	lists := calls["list-servers"] - calls0["list-servers"]
	per := (servers + lat.PageSize - 1) / lat.PageSize
	if per <= 1 {
		return 0
	}
	return max(0, (pages-lists)/(per-1))
}

// injectScaleFaults crashes o.Crashes servers spread over the window and kills one
// host a third into it, then waits for the window's end.
func injectScaleFaults(ctx context.Context, b *benchCloud, log *faultLog, o BenchScaleOptions, t0 time.Time, bar *progress) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5ca1e))
	dead := b.hosts[rng.IntN(len(b.hosts))]
	type fault struct {
		at   time.Duration
		kind string
	}
	var plan []fault
	for i := range o.Crashes {
		plan = append(plan, fault{o.Duration * time.Duration(i+1) / time.Duration(o.Crashes+2), "crash"})
	}
	plan = append(plan, fault{o.Duration / 3, "host-death"})
	slices.SortStableFunc(plan, func(a, b fault) int { return int(a.at - b.at) })
	for _, f := range plan {
		if !sleepCtx(ctx, time.Until(t0.Add(f.at)), bar) {
			return
		}
		now := time.Now()
		switch f.kind {
		case "crash":
			for range 20 {
				id := b.servers[rng.IntN(len(b.servers))]
				if s, ok := b.cloud.Server(id); ok && s.Host != dead && s.Status == model.StatusActive && s.TaskState == "" {
					log.inject("crash", "server/"+id, now)
					_ = b.cloud.Crash(id)
					break
				}
			}
		case "host-death":
			log.inject("host-death", "host/"+dead, now)
			_ = b.cloud.KillHost(dead)
		}
	}
	sleepCtx(ctx, time.Until(t0.Add(o.Duration)), bar)
}

// sleepCtx waits d (ticking the progress bar) and reports whether ctx still runs.
func sleepCtx(ctx context.Context, d time.Duration, bar *progress) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(left, time.Second)):
			bar.tick()
		}
	}
}

func errorsJoin(errs ...error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func startCPUProfile(dir, name string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func writeHeapProfile(dir string) {
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		return
	}
	defer f.Close()
	runtime.GC()
	_ = pprof.WriteHeapProfile(f)
}

// progress draws a one-line bar on a terminal (nil writer: nothing).
type progress struct {
	w      io.Writer
	name   string
	what   string
	start  time.Time
	length time.Duration
}

func newProgress(w io.Writer, name string) *progress { return &progress{w: w, name: name} }

func (p *progress) phase(what string, length time.Duration) {
	p.what, p.start, p.length = what, time.Now(), length
	p.tick()
}

func (p *progress) tick() {
	if p == nil || p.w == nil {
		return
	}
	el := time.Since(p.start).Round(time.Second)
	if p.length <= 0 {
		fmt.Fprintf(p.w, "\r\033[K%s: %s %s", p.name, p.what, el)
		return
	}
	frac := min(1, float64(el)/float64(p.length))
	n := int(frac * 30)
	fmt.Fprintf(p.w, "\r\033[K%s: [%s%s] %3.0f%% %s %s/%s", p.name, strings.Repeat("#", n), strings.Repeat(".", 30-n), frac*100, p.what, el, p.length)
}

func (p *progress) done() {
	if p != nil && p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// ScaleTable renders reports (one per size) as a markdown table, with the
// machine's provenance, so the growth with size reads across a row.
func ScaleTable(reps []BenchScaleReport) string {
	if len(reps) == 0 {
		return ""
	}
	var sb strings.Builder
	m := reps[0].Machine
	fmt.Fprintf(&sb, "vigil bench scale: %s, %d cores, %.1f GiB RAM, %s, %s, commit %s, %s\n", m.CPU, m.Cores, m.RAMGiB, m.OS, m.GoVersion, m.Commit, m.Date.Format(time.RFC3339))
	fmt.Fprintf(&sb, "API latency: %s; poll every %s\n\n", reps[0].Latency, reps[0].Interval)
	row := func(name string, f func(r BenchScaleReport) string) {
		fmt.Fprintf(&sb, "| %s |", name)
		for _, r := range reps {
			fmt.Fprintf(&sb, " %s |", f(r))
		}
		sb.WriteString("\n")
	}
	row("hosts / servers", func(r BenchScaleReport) string { return fmt.Sprintf("%d / %d", r.Hosts, r.Servers) })
	sb.WriteString("|---|" + strings.Repeat("---|", len(reps)) + "\n")
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	row("measured window", func(r BenchScaleReport) string { return sec(r.Window) })
	row("start to first full observation", func(r BenchScaleReport) string { return sec(r.StartToFirstFull) })
	row("start to all protected and observed", func(r BenchScaleReport) string { return sec(r.ToProtected) })
	row("CPU, steady state + faults (share of one core)", func(r BenchScaleReport) string { return fmt.Sprintf("%.1f %%", r.CPU*100) })
	row("peak RSS", func(r BenchScaleReport) string { return fmt.Sprintf("%.0f MiB", r.PeakRSSMiB) })
	row("polls per minute", func(r BenchScaleReport) string { return fmt.Sprintf("%.1f", r.PollsPerMin) })
	kinds := map[string]bool{}
	for _, r := range reps {
		for k := range r.CallsPerPoll {
			kinds[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		row("calls/poll "+k, func(r BenchScaleReport) string { return fmt.Sprintf("%.2f", r.CallsPerPoll[k]) })
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		row("calls/min "+k, func(r BenchScaleReport) string { return fmt.Sprintf("%.1f", r.CallsPerMinute[k]) })
	}
	pc := func(p Percentiles) string {
		if p.N == 0 {
			return "-"
		}
		return fmt.Sprintf("%s / %s (n=%d)", sec(p.P50), sec(p.P99), p.N)
	}
	row("detection p50 / p99", func(r BenchScaleReport) string { return pc(r.Detection) })
	row("recovery p50 / p99", func(r BenchScaleReport) string { return pc(r.Recovery) })
	for _, r := range reps {
		for _, f := range r.Faults {
			if f.Kind == "host-death" {
				fmt.Fprintf(&sb, "\n%d/%d: host death %s detected after %s, recovered (fenced, evacuated) after %s", r.Hosts, r.Servers, f.Subject, sec(f.Detected), sec(f.Recovered))
			}
		}
	}
	sb.WriteString("\n")
	return sb.String()
}
