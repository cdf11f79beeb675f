package engine

import (
	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/plan"
)

// onFabricProof: the hosts whose open incident took the fabric fence as its proof
// (their BMC did not answer). Their power decides nothing more for that incident,
// so it is not read at every reconcile: each read of a silent BMC waits out its
// timeout (5 s with IPMI), and that wait was added to every round of the host's
// recovery. It is still read with every other host's, every PowerEvery.
// Called with e.mu held.
func (e *Engine) onFabricProof() map[string]bool {
	out := map[string]bool{}
	for _, inc := range e.open {
		if !inc.State.Closed() && plan.OnFabricProof(inc) {
			out[inc.Subject.ID] = true
		}
	}
	return out
}

// fabricServices is what a Fabric may also say: which of its services the cloud
// has (a cloud without Cinder has no attachment to cut).
type fabricServices interface {
	Services() (ports, volumes bool)
}

// fabricOf tells the planner which halves of the fabric fence it may plan.
func fabricOf(f cloud.Fabric) plan.Fabric {
	if f == nil {
		return plan.Fabric{}
	}
	out := plan.Fabric{Configured: true, Ports: true, Volumes: true}
	if s, ok := f.(fabricServices); ok {
		out.Ports, out.Volumes = s.Services()
	}
	return out
}
