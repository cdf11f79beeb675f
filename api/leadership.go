package api

import (
	"errors"
	"net/http"

	"github.com/vigil-ha/vigil/engine"
)

// Leader is what an Engine also implements when it shares its store with other
// replicas: which shards it leads, and who leads the others.
type Leader interface {
	Leadership() engine.Leading
	Leads() bool
	Standby(shard string) error
}

// leadership serves GET /v1/leadership: this replica's shards and every lease.
func (h *handler) leadership(w http.ResponseWriter, r *http.Request) {
	l, ok := h.eng.(Leader)
	if !ok {
		write(w, http.StatusNotFound, Error{Error: "this Vigil does not report leadership"})
		return
	}
	write(w, http.StatusOK, withDurations(l.Leadership()))
}

// leaderOnly refuses a change on a standby with 503 naming the leader: only the
// leader journals, and an operator's change goes there (or through the load
// balancer that /readyz steers).
func (h *handler) leaderOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, ok := h.eng.(Leader)
		if !ok || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if err := l.Standby(""); err != nil {
			if errors.Is(err, engine.ErrStandby) {
				write(w, http.StatusServiceUnavailable, Error{Error: err.Error()})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
