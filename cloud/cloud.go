package cloud

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Lister lists the cloud's state in bulk: one call per kind per interval, never one
// call per server.
type Lister interface {
	// ListServers returns every server when since is zero, else those changed since
	// then (deleted ones with status DELETED).
	ListServers(ctx context.Context, since time.Time) ([]model.Server, error)
	// ListHosts returns every compute host with its service state.
	ListHosts(ctx context.Context) ([]model.Host, error)
}

// Actor takes recovery actions. Each returns once the cloud accepted the request;
// its effect is verified by later observations.
type Actor interface {
	Reboot(ctx context.Context, server string, hard bool) error
	// Rebuild rebuilds in place from the server's own image: same ID, name, ports, volumes.
	Rebuild(ctx context.Context, server string) error
	// Evacuate restarts the server on another host; target "" lets the cloud place it.
	Evacuate(ctx context.Context, server, target string) error
	// ResetState puts a server into ERROR and clears its task (Nova's os-resetState):
	// a task left hanging on a dead, fenced host otherwise blocks its evacuation.
	ResetState(ctx context.Context, server string) error
	// ForceDown marks a host's compute service forced down (true) or up (false).
	ForceDown(ctx context.Context, host string, down bool) error
	// Actions returns what the cloud recorded doing to the server, oldest first.
	Actions(ctx context.Context, server string) ([]model.InstanceAction, error)
}

// Compute is a full compute driver.
type Compute interface {
	Lister
	Actor
}

// Fencer powers hosts off through an out-of-band path (a BMC) and reports their power.
type Fencer interface {
	// CanFence reports whether the host has a fence device configured.
	CanFence(host string) bool
	PowerOff(ctx context.Context, host string) error
	PowerStatus(ctx context.Context, host string) (model.Power, error)
}

// Identifier is what a Fencer may also offer: the identity of the BMC that a host's
// fence entry reaches (IPMI's system GUID, Redfish's UUID or serial). Two hosts whose
// entries reach one BMC, or an identity that changed, mean a fence could power off
// the wrong machine.
type Identifier interface {
	Identity(ctx context.Context, host string) (string, error)
}

// ErrNoIdentity: the BMC answers but gives no identity (no GUID): it cannot be
// compared, which is not a reason to distrust it.
var ErrNoIdentity = errors.New("the BMC gives no identity")

// Clock is what a driver may also offer: its best estimate of the cloud's own clock
// now (from its answers' Date headers). ok is false until the cloud has answered.
// Everything compared with the cloud's timestamps (changes-since, updated_at) is
// computed on this clock, never on Vigil's.
type Clock interface {
	CloudNow() (t time.Time, ok bool)
}

// Instance action names, as Nova records them.
const (
	ActionReboot   = "reboot"
	ActionRebuild  = "rebuild"
	ActionEvacuate = "evacuate"
	ActionStop     = "stop"
	ActionStart    = "start"
	ActionCreate   = "create"
	// Actions that move a server to another host.
	ActionLiveMigration = "live-migration"
	ActionMigrate       = "migrate"
	ActionResize        = "resize"
)

var (
	// ErrNotFound: the server or host does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the cloud refused the action in the object's current state (HTTP 409).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the cloud did not answer (timeout, 5xx, connection refused).
	ErrUnavailable = errors.New("cloud unavailable")
)

type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as one that retrying will not fix (policy forbids, no capacity,
// action refused for good): the incident escalates with its message as the reason.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked Terminal anywhere in its chain.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}
