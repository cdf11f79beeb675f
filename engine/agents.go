package engine

import (
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Orders is Vigil's answer to a heartbeat of host's agent: the probes of each
// protected server the cloud places on that host, from its cluster's policy, and
// the interval Vigil expects. A server the cloud places elsewhere is not probed
// there (a copy left behind is reported as a domain, never probed as the server).
func (e *Engine) Orders(host string, interval time.Duration) model.AgentOrders {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := model.AgentOrders{Interval: interval}
	view := e.det.View()
	for _, c := range e.clusters {
		pol, ok := e.cfg.Policies[c.Policy]
		if !ok {
			pol = e.cfg.Policies["default"]
		}
		if pol.GuestAgent == nil && len(pol.Apps) == 0 {
			continue
		}
		for _, id := range c.Members {
			s, ok := view.Servers[id]
			if !ok || s.Host != host {
				continue
			}
			if out.Probes == nil {
				out.Probes = map[string]model.DomainProbes{}
			}
			if _, done := out.Probes[id]; done {
				continue // in two clusters: the first one's policy, as for its recovery
			}
			out.Probes[id] = model.DomainProbes{GuestAgent: pol.GuestAgent, Apps: pol.Apps}
		}
	}
	return out
}
