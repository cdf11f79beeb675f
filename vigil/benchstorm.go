package vigil

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// BenchStormOptions size `vigil bench storm`: Hosts simulated hosts in segments of
// SegmentSize, Servers servers on them (all protected); Kill hosts of the first
// segment lose their power at once. A storm that large is likelier a network or
// power-distribution fault than that many dead machines: Vigil must brake, and take
// no action there (no fence, no service forced down, no evacuation).
type BenchStormOptions struct {
	Hosts, Servers, SegmentSize, Kill int
	// Warmup: steady state before the storm; Hold: how long after the brake
	// engaged Vigil is watched taking no action (Timeout: how long the brake may
	// take to engage).
	Warmup, Hold, Timeout time.Duration
	Interval              time.Duration
	HostDownGrace         time.Duration // 0: the default policy's
	NoLatency             bool
	Seed                  uint64
	Progress              progressWriter
}

type progressWriter = interface{ Write([]byte) (int, error) }

// BenchStormReport is what `vigil bench storm` measured.
type BenchStormReport struct {
	Machine     Machine `json:"machine"`
	Hosts       int     `json:"hosts"`
	Servers     int     `json:"servers"`
	SegmentSize int     `json:"segment_size"`
	Killed      int     `json:"killed"`
	Latency     string  `json:"api_latency"`
	// Braked: the brake engaged on the storm's segment; TimeToBrake: from the
	// hosts' power loss to the first host incident waiting on the brake.
	Braked      bool          `json:"braked"`
	TimeToBrake time.Duration `json:"time_to_brake_ns"`
	Reason      string        `json:"brake_reason,omitempty"`
	// HostsWaiting: host incidents opened and waiting on the brake at the end.
	HostsWaiting int           `json:"host_incidents_waiting"`
	Watched      time.Duration `json:"watched_after_brake_ns"`
	// Actions: every mutating call to the cloud or a BMC from the storm on, by
	// kind (goal: none).
	Actions      map[string]int `json:"actions"`
	ActionsTotal int            `json:"actions_total"`
}

// readOnly are the calls that change nothing: everything else is an action.
func readOnly(kind string) bool {
	return strings.HasPrefix(kind, "list-") || strings.HasSuffix(kind, "-list") || kind == "actions" ||
		kind == "bmc-power-status" || kind == "bmc-identity" || strings.HasSuffix(kind, "(answer lost)")
}

// BenchStorm runs `vigil bench storm`.
func BenchStorm(ctx context.Context, o BenchStormOptions) (BenchStormReport, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 500
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Hosts < 3 || o.Servers < o.Hosts || o.Kill <= 0 || o.Kill > min(o.SegmentSize, o.Hosts) {
		return BenchStormReport{}, fmt.Errorf("bench storm: need at least 3 hosts, as many servers, and 1 to %d hosts (one segment) to kill", min(o.SegmentSize, o.Hosts))
	}
	rep := BenchStormReport{Machine: ThisMachine(), Hosts: o.Hosts, Servers: o.Servers, SegmentSize: o.SegmentSize, Killed: o.Kill, Latency: "none"}
	var lat *sim.Latency
	if !o.NoLatency {
		lat = sim.DefaultLatency(o.Seed)
		rep.Latency = fmt.Sprintf("%s-%s per call, pages of %d servers", lat.Min, lat.Max, lat.PageSize)
	}
	bar := newProgress(o.Progress, fmt.Sprintf("storm %d of %d", o.Kill, o.Hosts))
	defer bar.done()
	bar.phase("building the simulated cloud", 0)
	b, err := newBenchCloud(o.Hosts, o.Servers, o.SegmentSize, lat)
	if err != nil {
		return rep, err
	}
	log := &faultLog{faults: map[string]*BenchFault{}, keep: true}
	bar.phase("starting Vigil", 0)
	v, _, _, err := startBenchVigil(ctx, b, BenchScaleOptions{Interval: o.Interval, FullEvery: 5 * time.Minute, HostDownGrace: o.HostDownGrace}, log.onEvent)
	if err != nil {
		return rep, err
	}
	bar.phase("steady state before the storm", o.Warmup)
	if !sleepCtx(ctx, o.Warmup, bar) {
		return rep, errorsJoin(ctx.Err(), v.stop())
	}
	seg := slices.Sorted(maps.Keys(b.segments))[0]
	victims := b.segments[seg][:o.Kill]
	calls0 := b.cloud.Calls()
	t0 := time.Now()
	for _, h := range victims {
		_ = b.cloud.KillHost(h)
	}
	bar.phase(fmt.Sprintf("%d hosts of %s dead: waiting for the brake", o.Kill, seg), o.Timeout)
	deadline := t0.Add(o.Timeout)
	for !rep.Braked && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, min(200*time.Millisecond, time.Until(deadline)), nil)
		bar.tick()
		rep.Braked, rep.TimeToBrake, rep.Reason = log.brake(t0)
	}
	if rep.Braked {
		bar.phase("braked: watching that nothing is done", o.Hold)
		sleepCtx(ctx, o.Hold, bar)
		rep.Watched = o.Hold
	}
	calls := b.cloud.Calls()
	for _, in := range v.app.Engine.OpenIncidents() {
		if in.Subject.Kind == model.KindHost && in.State == model.IncidentWaiting && strings.Contains(in.Reason, "brake engaged") {
			rep.HostsWaiting++
		}
	}
	err = v.stop()
	rep.Actions = map[string]int{}
	for k, n := range calls {
		if d := n - calls0[k]; d > 0 && !readOnly(k) {
			rep.Actions[k] = d
			rep.ActionsTotal += d
		}
	}
	return rep, err
}

// brake reports the first host incident put to wait on a brake after t0.
func (l *faultLog) brake(t0 time.Time) (bool, time.Duration, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == "incident" && strings.HasPrefix(e.Subject, "host/") && strings.Contains(e.Message, "brake engaged") && !e.At.Before(t0) {
			_, why, _ := strings.Cut(e.Message, ": ")
			return true, e.At.Sub(t0), why
		}
	}
	return false, 0, ""
}

// StormTable renders a storm report for people.
func StormTable(r BenchStormReport) string {
	var sb strings.Builder
	m := r.Machine
	fmt.Fprintf(&sb, "vigil bench storm: %s, %d cores, %.1f GiB RAM, %s, %s, commit %s, %s\n", m.CPU, m.Cores, m.RAMGiB, m.OS, m.GoVersion, m.Commit, m.Date.Format(time.RFC3339))
	fmt.Fprintf(&sb, "API latency: %s\n\n", r.Latency)
	fmt.Fprintf(&sb, "| | |\n|---|---|\n")
	fmt.Fprintf(&sb, "| hosts / servers | %d / %d (segments of %d) |\n", r.Hosts, r.Servers, r.SegmentSize)
	fmt.Fprintf(&sb, "| hosts killed at once (one segment) | %d |\n", r.Killed)
	brake := "NOT engaged"
	if r.Braked {
		brake = fmt.Sprintf("engaged after %.1f s", r.TimeToBrake.Seconds())
	}
	fmt.Fprintf(&sb, "| brake | %s |\n", brake)
	fmt.Fprintf(&sb, "| host incidents waiting on the brake | %d |\n", r.HostsWaiting)
	fmt.Fprintf(&sb, "| watched after the brake | %.0f s |\n", r.Watched.Seconds())
	acts := "0 (goal: 0)"
	if r.ActionsTotal > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Actions)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Actions[k]))
		}
		acts = fmt.Sprintf("%d (goal: 0): %s", r.ActionsTotal, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&sb, "| actions taken | %s |\n", acts)
	if r.Reason != "" {
		fmt.Fprintf(&sb, "\nWhy: %s\n", r.Reason)
	}
	return sb.String()
}
