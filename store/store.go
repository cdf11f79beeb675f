package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/model"
)

var (
	// ErrNotFound: no such cluster or incident.
	ErrNotFound = errors.New("not found")
	// ErrExists: a cluster of that name exists.
	ErrExists = errors.New("already exists")
	// ErrStale: the write carried an older epoch than the incident's owner.
	ErrStale = errors.New("stale epoch: another owner took over this recovery")
	// ErrHeld: another live Vigil holds the store's lease (see HeldError).
	ErrHeld = errors.New("store held by another live Vigil")
)

// Owner names the process that holds a store's lease, so that a refused second
// Vigil can tell its operator which one to look at.
type Owner struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`          // when it took the lease
	Addr  string    `json:"addr,omitempty"` // its API address, once bound
}

// HeldError is the refusal to open a store whose lease a live owner holds.
type HeldError struct {
	Store string // the store's name for an operator: a file, a database
	Owner Owner  // zero when the holder has not recorded itself yet
	// Now is when the refusal was made (to say how long the owner has held it).
	Now time.Time
}

func (e *HeldError) Error() string {
	o := e.Owner
	if o.PID == 0 {
		return fmt.Sprintf("%s is in use by another live Vigil (it has not recorded its PID and host yet)", e.Store)
	}
	s := fmt.Sprintf("%s is in use by another live Vigil: PID %d on host %s, owner since %s", e.Store, o.PID, o.Host,
		o.Since.UTC().Format(time.RFC3339))
	if age := e.Now.Sub(o.Since); !e.Now.IsZero() && age >= time.Second {
		s += fmt.Sprintf(" (%s ago)", age.Round(time.Second))
	}
	if o.Addr != "" {
		s += ", API on " + o.Addr
	}
	return s
}

// Is makes errors.Is(err, ErrHeld) hold.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Store is Vigil's durable state.
//
// Leadership is leased per shard (Leadership): only a shard's leader writes its
// recoveries. A store that only one process may open (SQLite: Exclusive) is locked
// by opening it (a *HeldError, changing nothing, while a live owner holds it) and
// unlocked by Close.
type Store interface {
	Leadership
	Housekeeping

	CreateCluster(ctx context.Context, c model.Cluster) error
	DeleteCluster(ctx context.Context, name string) error
	Clusters(ctx context.Context) ([]model.Cluster, error)
	// UpdateCluster replaces a cluster's members, desired size and source (an
	// operator's edit, or the members its source resolved to last).
	UpdateCluster(ctx context.Context, c model.Cluster) error

	// CreateIncident stores a new incident (its ID is assigned) owned by epoch: it
	// fails with ErrStale unless epoch leads the incident's shard (in.Shard; ""
	// is model.DefaultShard).
	CreateIncident(ctx context.Context, epoch int64, in *model.Incident) error
	// UpdateIncident changes an incident's state and reason.
	UpdateIncident(ctx context.Context, epoch int64, in model.Incident) error
	// AddStep journals a new step (its ID is assigned).
	AddStep(ctx context.Context, epoch int64, st *model.Step) error
	// UpdateStep journals a step's new state.
	UpdateStep(ctx context.Context, epoch int64, st model.Step) error

	// OpenIncidents returns the incidents not yet closed, with their steps.
	OpenIncidents(ctx context.Context) ([]model.Incident, error)
	// LastClosed returns, per subject, its most recently closed incident.
	LastClosed(ctx context.Context) (map[model.Subject]model.Incident, error)
	// Incidents returns the newest incidents first, with their steps.
	Incidents(ctx context.Context, limit int) ([]model.Incident, error)
	// QueryIncidents returns one page of incidents, filtered (IncidentQuery).
	QueryIncidents(ctx context.Context, q IncidentQuery) ([]model.Incident, error)
	Incident(ctx context.Context, id int64) (model.Incident, error)

	// FenceDoubts returns the hosts whose fence device is not trusted, with why; a
	// doubt outlives restarts (a lying BMC lies again after one) until an operator
	// clears it (ClearFenceDoubt, after fixing the BMC or its entry).
	FenceDoubts(ctx context.Context) (map[string]string, error)
	RecordFenceDoubt(ctx context.Context, host, reason string, at time.Time) error
	// ClearFenceDoubt also forgets the host's BMC identity: the one read next is
	// the one to compare with.
	ClearFenceDoubt(ctx context.Context, host string) error
	// BMCIdentities returns, per host, the identity its BMC gave when Vigil first
	// read it: every later read is compared with it, after a restart too (an entry
	// rewired while Vigil was down must be caught at the first read after, not
	// taken as the host's own). RecordBMCIdentities keeps the first one recorded
	// per host (one write for all: the first read gives every host's at once).
	BMCIdentities(ctx context.Context) (map[string]string, error)
	RecordBMCIdentities(ctx context.Context, ids map[string]string, at time.Time) error

	// HostMaintenance returns the hosts an operator put in maintenance; it outlives
	// restarts until ClearHostMaintenance. SetHostMaintenance replaces the host's
	// record (its reason and since); ClearHostMaintenance of a host not in
	// maintenance is ErrNotFound.
	HostMaintenance(ctx context.Context) (map[string]model.Maintenance, error)
	SetHostMaintenance(ctx context.Context, m model.Maintenance) error
	ClearHostMaintenance(ctx context.Context, host string) error
	// HostReturns returns, per host, when Vigil last forced its compute service up
	// (host return): a force-down of Vigil's journaled before it is undone.
	HostReturns(ctx context.Context) (map[string]time.Time, error)
	RecordHostReturn(ctx context.Context, host string, at time.Time) error

	AppendEvents(ctx context.Context, evs ...model.Event) error
	// Events returns events with ID > after, oldest first, at most limit.
	Events(ctx context.Context, after int64, limit int) ([]model.Event, error)

	Close() error
}
