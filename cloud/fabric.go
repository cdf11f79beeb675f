package cloud

import (
	"context"
	"errors"
)

// Fabric cuts a server's old copy off the network (its Neutron ports set
// admin_state_up=false) and off its volumes (its Cinder attachments to the old
// host deleted), and reads both back: the fabric fence. Before an evacuation it
// keeps a copy that may still run on the old host from talking or writing; where
// a policy allows (fence_proof: bmc-or-fabric), it is the proof that lets a host
// whose BMC does not answer be evacuated.
type Fabric interface {
	// PortsDown sets every port of the server admin down and returns their IDs
	// (host is the old host, for messages and checks).
	PortsDown(ctx context.Context, server, host string) ([]string, error)
	// PortsUp sets every port of the server admin up again and returns their IDs.
	PortsUp(ctx context.Context, server string) ([]string, error)
	// CutVolumes deletes the server's volume attachments whose connector host is
	// host (only those: an attachment to another host is not the old copy's) and
	// returns the volumes cut.
	CutVolumes(ctx context.Context, server, host string) ([]string, error)
	// FabricState reads the server's ports and attachments: the confirmation of a
	// cut, and what a resumed step checks before it acts again.
	FabricState(ctx context.Context, server string) (FabricState, error)
}

// Port is a server's network port as the network service records it.
type Port struct {
	ID      string   `json:"id"`
	AdminUp bool     `json:"admin_state_up"`
	Host    string   `json:"host,omitempty"` // its binding host
	IPs     []string `json:"ips,omitempty"`
}

// Attachment is a volume attached to a server, with the host its connector names.
type Attachment struct {
	ID     string `json:"id"`
	Volume string `json:"volume"`
	Host   string `json:"host,omitempty"`
}

// FabricState is a server's ports and volume attachments. HasPorts / HasVolumes
// say whether the fabric can see them at all (false: no network or block-storage
// service configured for Vigil).
type FabricState struct {
	Ports       []Port       `json:"ports"`
	Attachments []Attachment `json:"attachments"`
	HasPorts    bool         `json:"has_ports"`
	HasVolumes  bool         `json:"has_volumes"`
}

// PortsDown reports whether every port is admin down.
func (f FabricState) PortsDown() bool {
	for _, p := range f.Ports {
		if p.AdminUp {
			return false
		}
	}
	return true
}

// PortsUp reports whether every port is admin up.
func (f FabricState) PortsUp() bool {
	for _, p := range f.Ports {
		if !p.AdminUp {
			return false
		}
	}
	return true
}

// AttachedTo lists the attachments whose connector host is host.
func (f FabricState) AttachedTo(host string) []Attachment {
	var out []Attachment
	for _, a := range f.Attachments {
		if a.Host == host {
			out = append(out, a)
		}
	}
	return out
}

// ErrNoFabric: the cloud has no network (Neutron) or block-storage (Cinder)
// service configured for Vigil, so that half of the fabric fence cannot be taken.
var ErrNoFabric = errors.New("no fabric service configured")
