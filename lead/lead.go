// Package lead keeps this replica's leadership of shards: leases in the store that
// the leader renews and a standby takes over once they stop being renewed.
//
// No clock is compared across replicas. The leader acts on a lease only within
// model.LeaseTiming.Valid of its last renewal's start, on its own clock; a standby
// takes the lease only after it saw the lease's version unchanged for a whole TTL,
// on its own clock, by a conditional update that fails if anything renewed it
// meanwhile. The renewal the standby saw last started before the standby saw it, so
// the leader stopped acting a quarter of a TTL before the standby may start. A
// leader paused (SIGSTOP, a VM migration, a long GC) finds on waking that its
// renewal is too old: it acts no more, and its next renewal fails.
package lead

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Keeper holds this replica's leases.
type Keeper struct {
	Store  store.Leadership
	ID     string // this replica; unique among the replicas sharing the store
	Shards []string
	Timing model.LeaseTiming
	// Now is this replica's clock: only differences of its readings are used.
	Now func() time.Time
	// OnChange, if set, hears every change of leadership (taken, lost, released).
	OnChange func(Change)

	mu      sync.Mutex
	addr    string
	started time.Time
	held    map[string]held
	seen    map[string]seen // shard -> its lease's version, and since when unchanged
	lost    map[string]bool // shards this keeper held and lost: never forced again
	peers   map[string]seen // replica -> its heartbeat's version, and since when unchanged
	leases  []store.Lease   // as last read
	last    time.Time       // the last Tick's start
	err     error           // the last Tick's error
}

// Change is a change of this replica's leadership.
type Change struct {
	Shard string
	Epoch int64
	Taken bool   // else lost or released
	Why   string // for the journal: from whom, or why lost
}

type held struct {
	lease   store.Lease
	renewed time.Time // the start of the last successful renewal (or take)
}

type seen struct {
	version int64
	since   time.Time
}

// New returns a keeper for id over shards (model.DefaultShard when none).
func New(s store.Leadership, id string, shards []string, timing model.LeaseTiming, now func() time.Time) *Keeper {
	if len(shards) == 0 {
		shards = []string{model.DefaultShard}
	}
	if timing.TTL <= 0 {
		timing.TTL = model.DefaultLeaseTTL
	}
	if now == nil {
		now = time.Now
	}
	if id == "" {
		id = DefaultID()
	}
	return &Keeper{Store: s, ID: id, Shards: slices.Clone(shards), Timing: timing, Now: now,
		held: map[string]held{}, seen: map[string]seen{}, peers: map[string]seen{}, lost: map[string]bool{}}
}

// DefaultID names this replica by host and process.
func DefaultID() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", h, os.Getpid())
}

// SetAddr records this replica's API address (shown by standbys naming the leader).
func (k *Keeper) SetAddr(addr string) {
	k.mu.Lock()
	k.addr = addr
	k.mu.Unlock()
}

// Epoch returns the epoch under which this replica may act on shard now, or 0: it
// does not lead it, or its last renewal started too long ago to act on.
func (k *Keeper) Epoch(shard string) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.epochLocked(shard, k.Now())
}

func (k *Keeper) epochLocked(shard string, now time.Time) int64 {
	h, ok := k.held[shard]
	if !ok || now.Sub(h.renewed) >= k.Timing.Valid() {
		return 0
	}
	return h.lease.Epoch
}

// Led returns the shards this replica may act on now, with their epochs.
func (k *Keeper) Led() map[string]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.Now()
	out := map[string]int64{}
	for s := range k.held {
		if e := k.epochLocked(s, now); e != 0 {
			out[s] = e
		}
	}
	return out
}

// Leases returns every shard's lease as last read.
func (k *Keeper) Leases() []store.Lease {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.leases)
}

// Err is the last Tick's error (nil: the store answered).
func (k *Keeper) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// Due reports whether a renewal is due (a Tick would renew or try to take).
func (k *Keeper) Due() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last.IsZero() || k.Now().Sub(k.last) >= k.Timing.RenewEvery()
}

// TickIfDue ticks when a renewal is due.
func (k *Keeper) TickIfDue(ctx context.Context) error {
	if !k.Due() {
		return nil
	}
	return k.Tick(ctx)
}

// Tick renews the leases held, records this replica's heartbeat, reads every lease,
// and takes the shards whose leader stopped renewing, up to this replica's fair
// share of the shards among the live replicas. Call it every Timing.RenewEvery.
func (k *Keeper) Tick(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	start := k.Now()
	k.last = start
	if k.started.IsZero() {
		k.started = start
	}
	err := k.tick(ctx, start)
	k.err = err
	return err
}

func (k *Keeper) tick(ctx context.Context, start time.Time) error {
	var errs []error
	for _, shard := range slices.Sorted(maps.Keys(k.held)) {
		h := k.held[shard]
		l, err := k.Store.RenewLease(ctx, shard, k.ID, h.lease.Epoch, start)
		switch {
		case errors.Is(err, store.ErrStale):
			delete(k.held, shard)
			k.lost[shard] = true
			k.change(Change{Shard: shard, Epoch: h.lease.Epoch, Why: "lease taken over by another replica: " + err.Error()})
		case err != nil:
			errs = append(errs, err) // kept until its validity runs out
		default:
			k.held[shard] = held{lease: l, renewed: start}
		}
	}
	if err := k.Store.Heartbeat(ctx, store.Replica{ID: k.ID, Addr: k.addr, Seen: start, Started: k.started}); err != nil {
		errs = append(errs, err)
	}
	leases, err := k.Store.Leases(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	k.leases = leases
	replicas, err := k.Store.Replicas(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	live := 1 // this one
	for _, r := range replicas {
		if r.ID == k.ID {
			continue
		}
		if k.observe(k.peers, r.ID, r.Version, start) < k.Timing.TTL {
			live++
		}
	}
	fair := (len(k.Shards) + live - 1) / live
	byShard := map[string]store.Lease{}
	for _, l := range leases {
		byShard[l.Shard] = l
	}
	for _, shard := range k.Shards {
		if _, mine := k.held[shard]; mine {
			continue
		}
		l, exists := byShard[shard]
		unchanged := k.observe(k.seen, shard, l.Version, start)
		// A store one process opens is this process's: its shards are taken at once at
		// the start (the previous process is gone). One lost since to another keeper
		// of this process (a replaced engine) is not: it is taken back only as a
		// standby would.
		force := k.Store.Exclusive() && !k.lost[shard]
		free := !exists || l.Holder == ""
		if !force && !free && unchanged < k.Timing.TTL {
			continue // its leader renews (or may still)
		}
		if !force && len(k.held) >= fair {
			continue // another live replica's share
		}
		nl, err := k.Store.TakeLease(ctx, store.LeaseRequest{Shard: shard, Holder: k.ID, Addr: k.addr, Seen: l.Version,
			Force: force, TTL: k.Timing.TTL, Now: start})
		if errors.Is(err, store.ErrStale) {
			continue // another standby was quicker, or its leader renewed at last
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k.held[shard] = held{lease: nl, renewed: start}
		why := "shard never led before"
		switch {
		case exists && l.Holder == "":
			why = "its leader released it"
		case exists && force:
			why = fmt.Sprintf("previous leader %s (epoch %d) gone: this store is opened by one process only", l.Holder, l.Epoch)
		case exists:
			why = fmt.Sprintf("leader %s (epoch %d) did not renew for %s", l.Holder, l.Epoch, unchanged.Round(time.Millisecond))
		}
		k.change(Change{Shard: shard, Epoch: nl.Epoch, Taken: true, Why: why})
	}
	return errors.Join(errs...)
}

// observe records the version of a lease or heartbeat and returns for how long it
// has been unchanged, as this replica saw it.
func (k *Keeper) observe(m map[string]seen, key string, version int64, now time.Time) time.Duration {
	s, ok := m[key]
	if !ok || s.version != version {
		m[key] = seen{version: version, since: now}
		return 0
	}
	return now.Sub(s.since)
}

func (k *Keeper) change(c Change) {
	if k.OnChange != nil {
		k.OnChange(c)
	}
}

// Release gives up every shard held (a clean stop): a standby takes them at once.
func (k *Keeper) Release(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for _, shard := range slices.Sorted(maps.Keys(k.held)) {
		h := k.held[shard]
		delete(k.held, shard)
		k.lost[shard] = true
		if err := k.Store.ReleaseLease(ctx, shard, k.ID, h.lease.Epoch); err != nil && !errors.Is(err, store.ErrStale) {
			errs = append(errs, err)
		}
		k.change(Change{Shard: shard, Epoch: h.lease.Epoch, Why: "released: this replica stops"})
	}
	if err := k.Store.RemoveReplica(ctx, k.ID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Drop forgets a shard this replica found it no longer leads (a write refused as
// stale): it acts on it no more, whatever the next renewal would say.
func (k *Keeper) Drop(shard string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h, ok := k.held[shard]; ok {
		delete(k.held, shard)
		k.lost[shard] = true
		k.change(Change{Shard: shard, Epoch: h.lease.Epoch, Why: "a write was refused: another replica leads it"})
	}
}

// Run ticks every Timing.RenewEvery until ctx ends, reporting errors to onErr.
func (k *Keeper) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(k.Timing.RenewEvery())
	defer t.Stop()
	for {
		if err := k.Tick(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(fmt.Errorf("leases: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
