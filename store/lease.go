package store

import (
	"context"
	"time"
)

// Lease is the leadership of one shard (model.Shard), kept in the store itself: the
// database every replica already shares is the only arbiter, no lock service and
// no GET_LOCK (Galera does not replicate those). A lease is a row changed only by
// conditional updates: a renewal matches the holder and the epoch, a takeover the
// version a standby saw unchanged for a whole TTL (model.LeaseTiming).
type Lease struct {
	Shard  string `json:"shard"`
	Holder string `json:"holder,omitempty"` // the leader's replica ID; "" never led, or released
	Addr   string `json:"addr,omitempty"`   // the leader's API address, for a standby to name
	// Epoch is the leader's fencing token, unique across every shard and takeover:
	// the incidents of the shard are claimed for it, and a write or an action under
	// an older epoch is refused.
	Epoch int64 `json:"epoch"`
	// Version changes at every renewal, takeover and release: a standby that sees it
	// unchanged for a TTL on its own clock knows the leader stopped renewing.
	Version int64         `json:"version"`
	TTL     time.Duration `json:"ttl"`
	// Renewed and Since are the holder's clock: shown to operators, never compared
	// across replicas.
	Renewed time.Time `json:"renewed,omitzero"`
	Since   time.Time `json:"since,omitzero"`
}

// LeaseRequest asks for a shard's lease.
type LeaseRequest struct {
	Shard, Holder, Addr string
	// Seen is the lease's Version as the caller observed it unchanged for a whole
	// TTL (0: the shard has no lease row yet). The lease is taken only if it is
	// still at that version: two standbys that saw the same expiry race, one wins.
	Seen int64
	// Force takes the lease whatever its version: only for a store a single process
	// can open at a time (Exclusive), where no other replica can hold it.
	Force bool
	TTL   time.Duration
	Now   time.Time // the caller's clock, recorded as Since and Renewed
}

// Replica is one running Vigil that shares the store, as it last recorded itself.
type Replica struct {
	ID      string    `json:"id"`
	Addr    string    `json:"addr,omitempty"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Version int64     `json:"version"`       // bumped at every heartbeat
	Seen    time.Time `json:"seen,omitzero"` // its own clock at its last heartbeat
	Started time.Time `json:"started,omitzero"`
}

// ShardCount is what a shard's leader last published of its hosts: a cloud-wide
// brake still sees the whole cloud when its shards are led by several replicas.
type ShardCount struct {
	Shard  string    `json:"shard"`
	Epoch  int64     `json:"epoch"`
	Hosts  int       `json:"hosts"`
	Failed int       `json:"failed"` // hosts whose verdict is failed
	At     time.Time `json:"at"`     // the publisher's clock
}

// Retention bounds the journal's history; a zero field keeps everything of its kind.
// Nothing of an open incident is ever removed (its steps and events), nor the last
// closed incident of a subject (the planner compares a relapse with it).
type Retention struct {
	EventsMaxAge time.Duration `json:"events_max_age"`
	EventsMax    int           `json:"events_max"`
	ClosedMaxAge time.Duration `json:"closed_max_age"` // closed incidents (and their steps)
	ClosedMax    int           `json:"closed_max"`
}

// Compacted counts what a compaction removed.
type Compacted struct {
	Events    int64 `json:"events"`
	Incidents int64 `json:"incidents"`
	Steps     int64 `json:"steps"`
}

// Size is how big the store is.
type Size struct {
	Bytes         int64 `json:"bytes"` // on disk (SQLite: file and WAL; MySQL: data and indexes)
	Events        int64 `json:"events"`
	Incidents     int64 `json:"incidents"`
	OpenIncidents int64 `json:"open_incidents"`
	Steps         int64 `json:"steps"`
}

// Leadership is the part of a Store that keeps the shards' leases.
type Leadership interface {
	// Exclusive reports whether only one process can open the store at a time (an
	// SQLite file's lock): its one replica may take every lease at once (Force).
	Exclusive() bool
	// TakeLease makes req.Holder the leader of req.Shard under a new epoch, and claims
	// the shard's open incidents for that epoch, in one transaction. It fails with
	// ErrStale, changing nothing, when the lease is no longer at req.Seen.
	TakeLease(ctx context.Context, req LeaseRequest) (Lease, error)
	// RenewLease bumps the lease's version if holder still leads shard under epoch,
	// else fails with ErrStale (the lease was taken over).
	RenewLease(ctx context.Context, shard, holder string, epoch int64, now time.Time) (Lease, error)
	// ReleaseLease gives a shard up (a clean stop): a standby may take it at once.
	// ErrStale if holder no longer leads it under epoch.
	ReleaseLease(ctx context.Context, shard, holder string, epoch int64) error
	// Leases returns every shard's lease, by shard name.
	Leases(ctx context.Context) ([]Lease, error)
	// CheckLease fails with ErrStale unless some shard's lease is at epoch: asked
	// right before each action.
	CheckLease(ctx context.Context, epoch int64) error

	// Heartbeat records a replica (inserted, or its version bumped and fields set).
	Heartbeat(ctx context.Context, r Replica) error
	// Replicas returns every replica recorded, by ID; RemoveReplica forgets one (a
	// clean stop).
	Replicas(ctx context.Context) ([]Replica, error)
	RemoveReplica(ctx context.Context, id string) error

	// PublishShard records a shard leader's host counts: ErrStale unless c.Epoch
	// still leads c.Shard.
	PublishShard(ctx context.Context, c ShardCount) error
	ShardCounts(ctx context.Context) ([]ShardCount, error)
}

// Housekeeping bounds the store.
type Housekeeping interface {
	// Compact removes the history beyond r (see Retention), judged at now.
	Compact(ctx context.Context, r Retention, now time.Time) (Compacted, error)
	Size(ctx context.Context) (Size, error)
}
