package engine

import (
	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/plan"
)

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
