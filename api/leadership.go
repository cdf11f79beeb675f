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

// readyz tells a load balancer which replica leads: 200 from one that leads a
// shard, 503 from a standby (its body names the leaders).
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	l, ok := h.eng.(Leader)
	if !ok {
		write(w, http.StatusOK, map[string]any{"ready": true, "leader": true})
		return
	}
	lead := l.Leadership()
	body := map[string]any{"replica": lead.Replica, "leader": len(lead.Leads) > 0, "leads": lead.Leads, "leases": withDurations(lead.Leases)}
	if len(lead.Leads) == 0 {
		body["ready"] = false
		if err := l.Standby(""); err != nil {
			body["reason"] = err.Error()
		}
		write(w, http.StatusServiceUnavailable, body)
		return
	}
	body["ready"] = true
	write(w, http.StatusOK, body)
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
