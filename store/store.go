package store

import (
	"context"
	"errors"

	"github.com/vigil-ha/vigil/model"
)

var (
	// ErrNotFound: no such cluster or incident.
	ErrNotFound = errors.New("not found")
	// ErrExists: a cluster of that name exists.
	ErrExists = errors.New("already exists")
	// ErrStale: the write carried an older epoch than the incident's owner.
	ErrStale = errors.New("stale epoch: another owner took over this recovery")
)

// Store is Vigil's durable state.
type Store interface {
	// Claim makes the caller the owner of every open recovery and returns its epoch.
	Claim(ctx context.Context) (int64, error)

	CreateCluster(ctx context.Context, c model.Cluster) error
	DeleteCluster(ctx context.Context, name string) error
	Clusters(ctx context.Context) ([]model.Cluster, error)

	// CreateIncident stores a new incident (its ID is assigned) owned by epoch.
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
	Incident(ctx context.Context, id int64) (model.Incident, error)

	AppendEvents(ctx context.Context, evs ...model.Event) error
	// Events returns events with ID > after, oldest first, at most limit.
	Events(ctx context.Context, after int64, limit int) ([]model.Event, error)

	Close() error
}
