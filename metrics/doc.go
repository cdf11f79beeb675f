// Package metrics is Vigil's Prometheus instrumentation, served at /metrics: what
// the engine sees now (verdicts, open incidents, brakes, leadership), read from it
// at scrape time, and what it did (recoveries, steps, time to detect, fence and
// recover; cloud API and BMC calls), counted as the journal and the drivers see it.
//
// It owns its own registry (never Prometheus' global one), and observes; it never
// decides anything and never changes what it wraps: a write, a BMC call or an HTTP
// request goes through unchanged, with its answer. Labels are bounded: an HTTP path
// is reduced to a template (IDs and names replaced), never the full URL.
package metrics
