package vigil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// BenchAgentsOptions size `vigil bench agents`: one Vigil (on an embedded simulated
// cloud with one host per agent) and that many agents heartbeating to it over HTTP
// on loopback, from another process (Load), so that Vigil's own CPU and memory are
// measured alone.
type BenchAgentsOptions struct {
	Agents   int
	Interval time.Duration
	Warmup   time.Duration // excluded from the measurement (history builds up)
	Measure  time.Duration
	// Load starts the agents' process: it is given the API's URL and the seed of
	// the tokens, and stopped when the benchmark ends.
	Load func(ctx context.Context, url string, tokenSeed uint64) (stop func() error, err error)
	Out  io.Writer
}

// BenchAgentsReport is what the benchmark measured over the measurement window.
type BenchAgentsReport struct {
	Agents         int
	Interval       time.Duration
	Window         time.Duration
	Beats          int64   // heartbeats received in the window
	BeatsPerSecond float64 // ... per second
	CPU            float64 // Vigil's CPU time over the window, in cores (1.0 = one core busy)
	MaxRSSMiB      float64 // peak resident memory of Vigil's process
	HeapMiB        float64 // Go heap in use at the end
	Dropped        int     // beats the receiver's buffer dropped
	Verdicts       int     // verdict changes journaled in the window: noise, must be 0
	Incidents      int     // incidents opened in the window: must be 0
	NoiseSamples   []string
}

// AgentToken is the token of the bench's agent of host, from the run's seed.
func AgentToken(seed uint64, host string) string {
	return fmt.Sprintf("bench-%016x-%s", seed, host)
}

// BenchHost names the bench's i-th host (from 1).
func BenchHost(i int) string { return fmt.Sprintf("host-%05d", i) }

// BenchAgents runs the benchmark.
func BenchAgents(ctx context.Context, o BenchAgentsOptions) (BenchAgentsReport, error) {
	if o.Agents <= 0 || o.Interval <= 0 || o.Measure <= 0 || o.Load == nil {
		return BenchAgentsReport{}, fmt.Errorf("bench agents: agents, interval, measure and a load are needed")
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return BenchAgentsReport{}, err
	}
	defer os.RemoveAll(dir)
	cloud := sim.New(sim.DefaultConfig(), time.Now)
	seed := rand.Uint64()
	conf := DefaultConfig()
	conf.Agents.Interval = o.Interval
	var members []string
	for i := 1; i <= o.Agents; i++ {
		h := BenchHost(i)
		cloud.AddHost(h, fmt.Sprintf("seg-%d", i%4), 6)
		conf.Agents.Tokens[h] = AgentToken(seed, h)
		id, err := cloud.CreateServer(fmt.Sprintf("vm-%05d", i), h)
		if err != nil {
			return BenchAgentsReport{}, err
		}
		members = append(members, id)
	}
	var mu sync.Mutex
	var rep BenchAgentsReport
	measuring := atomic.Bool{}
	onEvent := func(e model.Event) {
		if !measuring.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Kind == "verdict":
			rep.Verdicts++
		case e.Kind == "incident" && strings.Contains(e.Message, " opened "):
			rep.Incidents++
		default:
			return
		}
		if len(rep.NoiseSamples) < 5 {
			rep.NoiseSamples = append(rep.NoiseSamples, e.Subject+": "+e.Message)
		}
	}
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(dir, "vigil.db"), Interval: 2 * time.Second,
		FullEvery: time.Minute, Config: conf, Compute: cloud, Fencer: cloud, OnEvent: onEvent,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return BenchAgentsReport{}, err
	}
	if err := app.Engine.Tick(ctx); err != nil {
		app.Close()
		return BenchAgentsReport{}, err
	}
	if err := app.Engine.CreateCluster(ctx, model.Cluster{Name: "all", Members: members, Desired: len(members), Policy: "default"}); err != nil {
		app.Close()
		return BenchAgentsReport{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(runCtx) }()
	stop, err := o.Load(ctx, "http://"+app.Addr(), seed)
	if err != nil {
		cancel()
		<-runErr
		return BenchAgentsReport{}, err
	}
	fmt.Fprintf(o.Out, "vigil bench agents: %d agents every %s to http://%s; warm-up %s, measuring %s\n", o.Agents, o.Interval, app.Addr(), o.Warmup, o.Measure)
	select {
	case <-time.After(o.Warmup):
	case <-ctx.Done():
	}
	beats0 := app.Agents.Received()
	cpu0 := cpuTime()
	t0 := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(o.Measure):
	case <-ctx.Done():
	}
	measuring.Store(false)
	window := time.Since(t0)
	cpu := cpuTime() - cpu0
	beats := app.Agents.Received() - beats0
	loadErr := stop()
	cancel()
	err = <-runErr
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mu.Lock()
	defer mu.Unlock()
	rep.Agents, rep.Interval, rep.Window, rep.Beats = o.Agents, o.Interval, window, beats
	rep.BeatsPerSecond = float64(beats) / window.Seconds()
	rep.CPU = cpu.Seconds() / window.Seconds()
	rep.MaxRSSMiB = maxRSSMiB()
	rep.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	rep.Dropped = app.Agents.Dropped()
	if err == nil {
		err = loadErr
	}
	return rep, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// AgentLoad heartbeats as n agents (host-00001...) to url until ctx ends: each
// agent on its own connection, every interval with ±20 % jitter, a report of its one
// domain every fifth beat. It is what `vigil bench agents` runs in a second process.
func AgentLoad(ctx context.Context, url string, seed uint64, n int, interval time.Duration) error {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var failures atomic.Int64
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := BenchHost(i)
			token := AgentToken(seed, host)
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			boot := fmt.Sprintf("%08x", rng.Uint32())
			// Spread the agents over the first interval.
			select {
			case <-time.After(time.Duration(rng.Int64N(int64(interval)))):
			case <-ctx.Done():
				return
			}
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				b := model.AgentBeat{Host: host, Path: model.PathManagement, Boot: boot, Seq: seq, Sent: time.Now(), Interval: interval}
				if seq%5 == 1 {
					b.Report = &model.HostReport{Domains: []model.Domain{{UUID: fmt.Sprintf("bench-domain-%05d", i), Name: "vm", State: model.DomainRunning, Reason: model.ReasonBooted}}}
				}
				body, _ := json.Marshal(b)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/agent/beat", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failures.Add(1)
					}
				} else if ctx.Err() == nil {
					failures.Add(1)
				}
				jitter := time.Duration((rng.Float64()*0.4 - 0.2) * float64(interval))
				select {
				case <-time.After(interval + jitter):
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		return fmt.Errorf("%d heartbeats failed (refused or unanswered)", f)
	}
	return nil
}
