package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/plan"
)

// Source is what the metrics read of the engine at scrape time.
type Source interface {
	Hosts() []engine.HostStatus
	Servers() []engine.ServerStatus
	OpenIncidents() []model.Incident
	Leadership() engine.Leading
}

// Attach makes the scrape read the engine's state; limits are the engine's (the
// brake's thresholds: model.DefaultLimits when unset, as the engine does).
func (m *Metrics) Attach(src Source, limits model.Limits) {
	if limits.MaxConcurrent == 0 {
		limits = model.DefaultLimits()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.src = src
	m.limits = limits
}

func (m *Metrics) source() (Source, model.Limits) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.src, m.limits
}

var (
	verdictsDesc = prometheus.NewDesc("vigil_verdicts",
		"Current verdicts, by subject kind (host, server) and verdict (a host's health: up, suspect, down, dead, isolated, ...; a server's: healthy, failed, ...; none: not judged yet).",
		[]string{"kind", "verdict"}, nil)
	openDesc = prometheus.NewDesc("vigil_incidents_open",
		"Incidents not closed (open or waiting) that this replica leads.", nil, nil)
	brakeDesc = prometheus.NewDesc("vigil_brake_engaged",
		"1 while the brake is engaged (nothing fenced or evacuated there), else 0; scope is cloud (the whole cloud) or segment/NAME.",
		[]string{"scope"}, nil)
	leaderDesc = prometheus.NewDesc("vigil_shard_leader",
		"1 for each shard this replica leads, 0 for each shard it stands by for.", []string{"shard"}, nil)
)

// The verdicts always reported, at 0 when none: a dashboard's series exist from
// the start.
var (
	hostVerdicts = []model.HostHealth{model.HostUp, model.HostSuspect, model.HostDown, model.HostDead,
		model.HostIsolated, model.HostPartitioned, model.HostMaintenance}
	serverVerdicts = []model.ServerHealth{model.ServerHealthy, model.ServerSuspect, model.ServerFailed,
		model.ServerRecovering, model.ServerUnknown}
)

// state reads the engine's state at each scrape: nothing to keep in step.
type state struct{ m *Metrics }

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	ch <- verdictsDesc
	ch <- openDesc
	ch <- brakeDesc
	ch <- leaderDesc
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	src, limits := s.m.source()
	if src == nil {
		return
	}
	hosts := src.Hosts()
	collectVerdicts(ch, hosts, src.Servers())
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(len(src.OpenIncidents())))
	collectBrakes(ch, hosts, limits)
	collectLeadership(ch, src.Leadership())
}

func collectVerdicts(ch chan<- prometheus.Metric, hosts []engine.HostStatus, servers []engine.ServerStatus) {
	count := func(kind string, known []string, values []string) {
		n := map[string]int{}
		for _, k := range known {
			n[k] = 0
		}
		for _, v := range values {
			if v == "" {
				v = "none"
			}
			n[v]++
		}
		for _, v := range slices.Sorted(maps.Keys(n)) {
			ch <- prometheus.MustNewConstMetric(verdictsDesc, prometheus.GaugeValue, float64(n[v]), kind, v)
		}
	}
	var hv, sv []string
	for _, h := range hosts {
		hv = append(hv, h.Verdict.Host)
	}
	for _, s := range servers {
		sv = append(sv, s.Verdict.Server)
	}
	count(string(model.KindHost), strs(hostVerdicts), hv)
	count(string(model.KindServer), strs(serverVerdicts), sv)
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// collectBrakes reports the brake of every segment that has hosts, and the
// cloud's, as the planner computes them (plan.Brakes) from the same state.
func collectBrakes(ch chan<- prometheus.Metric, hosts []engine.HostStatus, limits model.Limits) {
	byName := make(map[string]model.Host, len(hosts))
	verdicts := make(map[model.Subject]model.Verdict, len(hosts))
	segments := map[string]bool{}
	for _, h := range hosts {
		byName[h.Name] = h.Host
		verdicts[model.Subject{Kind: model.KindHost, ID: h.Name}] = h.Verdict
		segments[h.Segment] = true
	}
	braked := plan.Brakes(byName, verdicts, limits)
	on := func(key string) float64 {
		if _, ok := braked[key]; ok {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(brakeDesc, prometheus.GaugeValue, on(plan.CloudWide), "cloud")
	for _, seg := range slices.Sorted(maps.Keys(segments)) {
		ch <- prometheus.MustNewConstMetric(brakeDesc, prometheus.GaugeValue, on(seg), "segment/"+seg)
	}
}

func collectLeadership(ch chan<- prometheus.Metric, l engine.Leading) {
	shards := map[string]float64{}
	for _, ls := range l.Leases {
		shards[ls.Shard] = 0
	}
	for s := range l.Leads {
		shards[s] = 1
	}
	for _, s := range slices.Sorted(maps.Keys(shards)) {
		ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, shards[s], s)
	}
}
