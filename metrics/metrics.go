package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-ha/vigil/model"
)

// Config configures the metrics of one Vigil process.
type Config struct {
	// Version is vigil_build_info's version (default: the module's, else "dev").
	Version string
}

// Metrics holds one process's metrics and its registry.
type Metrics struct {
	reg *prometheus.Registry

	recoveries *prometheus.CounterVec
	steps      *prometheus.HistogramVec
	detect     prometheus.Histogram
	fence      prometheus.Histogram
	recover    prometheus.Histogram
	cloudCalls *prometheus.CounterVec
	bmcCalls   *prometheus.CounterVec

	mu sync.Mutex
	// opened: when each incident seen in the journal opened (fence and recover
	// times count from it); done: the steps already observed finished, per
	// incident; closed: the incidents already counted as closed.
	opened map[int64]openedAt
	done   map[int64]map[int64]bool
	closed map[int64]bool
	// src is the engine read at scrape time (Attach); nil before.
	src    Source
	limits model.Limits
}

type openedAt struct{ at int64 } // UnixNano: a zero time is never stored

// Buckets, in seconds. Steps run from a second (a reboot accepted) to their
// timeout (minutes); detection from the agents' seconds to a grace period's
// minutes; a recovery from seconds to its policy's deadline (up to an hour).
var (
	stepBuckets    = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
	detectBuckets  = []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}
	fenceBuckets   = []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800}
	recoverBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600}
)

// New returns the metrics on a registry of their own, with the Go runtime's and
// the process's collectors and vigil_build_info.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), opened: map[int64]openedAt{}, done: map[int64]map[int64]bool{}, closed: map[int64]bool{}}
	m.recoveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_recoveries_total",
		Help: "Incidents closed by this process, by outcome: resolved (the subject is healthy again), escalated (Vigil gave up; an operator must act), superseded (its host's incident took over)."},
		[]string{"outcome"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_step_duration_seconds",
		Help:    "Duration of each recovery step, from its start (intent journaled) to its outcome (succeeded, failed or skipped), by action and outcome.",
		Buckets: stepBuckets}, []string{"action", "outcome"})
	m.detect = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_time_to_detect_seconds",
		Help:    "Time to detect: from the failure's first evidence (when its condition was first observed, the verdict's since) to the incident opened.",
		Buckets: detectBuckets})
	m.fence = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_time_to_fence_seconds",
		Help:    "Time to fence: from the incident opened to its host's fence confirmed (the fence step succeeded: power verified off).",
		Buckets: fenceBuckets})
	m.recover = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_time_to_recover_seconds",
		Help:    "Time to recover: from the incident opened to the incident resolved (escalated and superseded incidents are not counted).",
		Buckets: recoverBuckets})
	m.cloudCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_cloud_api_calls_total",
		Help: "Calls to the cloud's API by endpoint (an HTTP path template, IDs and names replaced; the operation for the simulated cloud), method (HTTP method; SIM for the simulated cloud) and status (HTTP status code; error when no answer came; ok or error for the simulated cloud)."},
		[]string{"endpoint", "method", "status"})
	m.bmcCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_bmc_calls_total",
		Help: "Calls to hosts' BMCs by operation (power-off, power-status, identity) and outcome (ok or error)."},
		[]string{"op", "outcome"})
	for _, o := range []model.IncidentState{model.IncidentResolved, model.IncidentEscalated, model.IncidentSuperseded} {
		m.recoveries.WithLabelValues(string(o)) // zero until the first: a rate() has a start
	}
	m.reg.MustRegister(m.recoveries, m.steps, m.detect, m.fence, m.recover, m.cloudCalls, m.bmcCalls,
		buildInfo(cfg.Version), &state{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the metrics' own registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format (or OpenMetrics when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// buildInfo is vigil_build_info{version,commit,go_version} 1.
func buildInfo(version string) prometheus.Collector {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				commit = s.Value
			}
		}
	}
	if version == "" {
		version = "dev"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_build_info",
		Help:        "Vigil's build: always 1, its labels say which version, commit (vcs.revision) and Go.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": runtime.Version()}})
	g.Set(1)
	return g
}
