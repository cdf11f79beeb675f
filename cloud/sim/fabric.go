package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
)

// fabric is a server's ports (Neutron) and volume attachments (Cinder). Each server
// has one port and one volume. A port's binding and an attachment's connector host
// follow the server once a move has landed (no work in flight, a copy running
// where Nova places it), as Nova rebinds ports and re-attaches volumes on the new
// host in an evacuation, also after a Cinder-side detach; the admin state of a port
// is kept across moves.
type fabric struct {
	ports       []cloud.Port
	attachments []cloud.Attachment
	// downSince: when the ports were last set admin down (zero while up).
	downSince time.Time
	seq       int
}

var _ cloud.Fabric = (*Cloud)(nil)

// fabricLocked returns the server's fabric, creating it on first use (bound to the
// server's host) and catching it up with a move that landed.
func (c *Cloud) fabricLocked(s *server) *fabric {
	if c.fab == nil {
		c.fab = map[string]*fabric{}
	}
	f := c.fab[s.id]
	if f == nil {
		f = &fabric{ports: []cloud.Port{{ID: "port-" + s.id, AdminUp: true, Host: s.host, IPs: []string{ipOf(s.id)}}},
			attachments: []cloud.Attachment{{ID: "att-" + s.id + "-1", Volume: "vol-" + s.id, Host: s.host}}, seq: 1}
		c.fab[s.id] = f
	}
	if s.deleted {
		f.attachments = nil
		return f
	}
	if len(s.work) == 0 && slices.Contains(s.copies, s.host) && f.ports[0].Host != s.host {
		for i := range f.ports {
			f.ports[i].Host = s.host
		}
		// Nova attaches the volume on the new host (a new attachment) and deletes the
		// old one; one already deleted from Cinder's side is ignored.
		f.seq++
		f.attachments = []cloud.Attachment{{ID: fmt.Sprintf("att-%s-%d", s.id, f.seq), Volume: "vol-" + s.id, Host: s.host}}
	}
	return f
}

func ipOf(id string) string {
	n := 0
	for _, r := range id {
		if r >= '0' && r <= '9' {
			n = n*10 + int(r-'0')
		}
	}
	return fmt.Sprintf("192.0.2.%d", n%250+2)
}

func (c *Cloud) fabricServerLocked(op, id string) (*server, error) {
	if err := c.call(op); err != nil {
		return nil, err
	}
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return nil, cloud.Terminal(fmt.Errorf("%s %s: server %w", op, id, cloud.ErrNotFound))
	}
	return s, nil
}

// PortsDown implements cloud.Fabric.
func (c *Cloud) PortsDown(ctx context.Context, id, host string) ([]string, error) {
	return c.setPorts("ports-down", id, false)
}

// PortsUp implements cloud.Fabric.
func (c *Cloud) PortsUp(ctx context.Context, id string) ([]string, error) {
	return c.setPorts("ports-up", id, true)
}

func (c *Cloud) setPorts(op, id string, up bool) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.fabricServerLocked(op, id)
	if err != nil {
		return nil, err
	}
	f := c.fabricLocked(s)
	var ids []string
	for i := range f.ports {
		f.ports[i].AdminUp = up
		ids = append(ids, f.ports[i].ID)
	}
	switch {
	case up:
		f.downSince = time.Time{}
	case f.downSince.IsZero():
		f.downSince = c.now()
	}
	return ids, c.answer(op)
}

// CutVolumes implements cloud.Fabric: the attachments to host are deleted from
// Cinder's side (the simulated Vigil holds a service token).
func (c *Cloud) CutVolumes(ctx context.Context, id, host string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.fabricServerLocked("volumes-cut", id)
	if err != nil {
		return nil, err
	}
	f := c.fabricLocked(s)
	var vols []string
	f.attachments = slices.DeleteFunc(f.attachments, func(a cloud.Attachment) bool {
		if a.Host == host {
			vols = append(vols, a.Volume)
			return true
		}
		return false
	})
	return vols, c.answer("volumes-cut")
}

// FabricState implements cloud.Fabric.
func (c *Cloud) FabricState(ctx context.Context, id string) (cloud.FabricState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.fabricServerLocked("fabric-state", id)
	if err != nil {
		return cloud.FabricState{}, err
	}
	return c.fabricStateLocked(s), nil
}

func (c *Cloud) fabricStateLocked(s *server) cloud.FabricState {
	f := c.fabricLocked(s)
	st := cloud.FabricState{Ports: slices.Clone(f.ports), Attachments: slices.Clone(f.attachments), HasPorts: true, HasVolumes: true}
	for i := range st.Ports {
		st.Ports[i].IPs = slices.Clone(st.Ports[i].IPs)
	}
	return st
}

// FabricTruth is a server's ports and attachments and since when its ports are
// down (zero: up), for the simulation's checks; it counts no API call.
func (c *Cloud) FabricTruth(id string) (cloud.FabricState, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted {
		return cloud.FabricState{}, time.Time{}, false
	}
	st := c.fabricStateLocked(s)
	return st, c.fab[id].downSince, true
}

// CutOff reports whether a copy of the server on host can neither talk nor write:
// every port of the server admin down or bound to another host, and no volume
// attached to host.
func CutOff(st cloud.FabricState, host string) bool {
	for _, p := range st.Ports {
		if p.AdminUp && p.Host == host {
			return false
		}
	}
	return len(st.AttachedTo(host)) == 0
}
