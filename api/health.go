package api

import (
	"net/http"
)

// healthz says the process is alive: 200 whenever it serves. It checks nothing
// else (a liveness probe that failed on a cloud outage would restart a Vigil that
// is doing the right thing: waiting).
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	write(w, http.StatusOK, map[string]any{"status": "ok"})
}

// Check is one of /readyz's answers: whether it holds, and why not.
type Check struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// readyz says whether this replica should get traffic: 200 when it leads a shard,
// sees the cloud and can write its store; otherwise 503, with failing naming what
// fails (leading, cloud, store). A standby's body names the leaders (leases).
//
// The store is judged by the lease keeper's last write (its renewals, every few
// seconds; engine.Leading.Error): no extra write per probe.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{}
	checks := map[string]Check{}
	c := h.eng.Cloud()
	checks["cloud"] = Check{OK: c.Reachable, Error: c.Error}
	leading := true
	if l, ok := h.eng.(Leader); ok {
		lead := l.Leadership()
		leading = len(lead.Leads) > 0
		body["replica"], body["leads"], body["leases"] = lead.Replica, lead.Leads, withDurations(lead.Leases)
		checks["store"] = Check{OK: lead.Error == "", Error: lead.Error}
		lc := Check{OK: leading}
		if !leading {
			lc.Error = "this replica leads no shard: it stands by"
			if err := l.Standby(""); err != nil {
				lc.Error = err.Error()
				body["reason"] = err.Error()
			}
		}
		checks["leading"] = lc
	}
	body["leader"] = leading
	failing := []string{}
	for _, name := range []string{"leading", "cloud", "store"} {
		if c, ok := checks[name]; ok && !c.OK {
			failing = append(failing, name)
		}
	}
	body["checks"], body["failing"] = checks, failing
	body["ready"] = len(failing) == 0
	if len(failing) > 0 {
		write(w, http.StatusServiceUnavailable, body)
		return
	}
	write(w, http.StatusOK, body)
}
