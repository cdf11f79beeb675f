package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// WithMetrics serves h (Prometheus' text format: package metrics) at GET
// /metrics, beside /healthz and /readyz: outside /v1, read by a scraper, on a
// standby too (its metrics say it stands by).
func WithMetrics(h http.Handler) Option {
	return func(hd *handler) {
		if h != nil {
			hd.root = append(hd.root, func(r chi.Router) { r.Method(http.MethodGet, "/metrics", h) })
		}
	}
}
