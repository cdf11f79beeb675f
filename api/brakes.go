package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
)

// braker is what GET /v1/brakes needs of the engine (engine.Engine has it).
type braker interface {
	Brakes() map[string]string
}

// Brake is one engaged brake: a segment ("*" for the whole cloud) where nothing
// is fenced or evacuated, and why.
type Brake struct {
	Segment string `json:"segment"`
	Reason  string `json:"reason"`
}

// WithBrakes serves GET /v1/brakes: the engaged brakes, sorted by segment (an
// empty list when none is).
func WithBrakes() Option {
	return func(h *handler) {
		b, ok := h.eng.(braker)
		if !ok {
			return
		}
		h.v1 = append(h.v1, func(r chi.Router) {
			r.Get("/brakes", func(w http.ResponseWriter, r *http.Request) {
				m := b.Brakes()
				out := []Brake{}
				for _, seg := range slices.Sorted(maps.Keys(m)) {
					out = append(out, Brake{Segment: seg, Reason: m[seg]})
				}
				write(w, http.StatusOK, out)
			})
		})
	}
}
