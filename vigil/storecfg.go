package vigil

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// StoreConfig is the policy file's store section: how much history the store
// keeps (store.Retention; 0 keeps everything of its kind) and how often the
// leader compacts it.
type StoreConfig struct {
	Retention    store.Retention
	CompactEvery time.Duration
}

// DefaultStoreConfig keeps 30 days or a million events, 90 days or 100,000 closed
// incidents, compacted hourly: a few hundred MB at most.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{Retention: store.Retention{EventsMaxAge: 30 * 24 * time.Hour, EventsMax: 1_000_000,
		ClosedMaxAge: 90 * 24 * time.Hour, ClosedMax: 100_000}, CompactEvery: time.Hour}
}

func (c *checker) storeSection(sec entry, cfg *Config) {
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"retention", "compact_every"}) {
		switch e.Key {
		case "compact_every":
			if d, ok := c.positive(e.V, e.Path, "1h"); ok {
				cfg.Store.CompactEvery = d
			}
		case "retention":
			c.retention(e, &cfg.Store.Retention)
		}
	}
}

func (c *checker) retention(sec entry, r *store.Retention) {
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"events_max_age", "events_max", "closed_max_age", "closed_max"}) {
		switch e.Key {
		case "events_max_age", "closed_max_age":
			d, ok := c.duration(e.V, e.Path)
			if !ok {
				continue
			}
			if d < 0 {
				c.bad(e.V, e.Path, "%s is negative: give an age such as 720h (0 keeps every age)", rawValue(e.V))
				continue
			}
			if e.Key == "events_max_age" {
				r.EventsMaxAge = d
			} else {
				r.ClosedMaxAge = d
			}
		case "events_max", "closed_max":
			if v, ok := c.between(e.V, e.Path, 0, 1<<40, "give a count such as 100000 (0 keeps any number)"); ok {
				if e.Key == "events_max" {
					r.EventsMax = v
				} else {
					r.ClosedMax = v
				}
			}
		}
	}
}

// compactor bounds the store: every CompactEvery, if this replica leads at least
// one shard (standbys leave it to the leader: one compaction at a time), it
// removes the history beyond the retention and journals what it removed.
type compactor struct {
	store store.Store
	cfg   StoreConfig
	leads func() bool
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	last *api.Compaction
}

func (c *compactor) run(ctx context.Context) {
	if c.cfg.CompactEvery <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.CompactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.leads() {
				c.once(ctx)
			}
		}
	}
}

func (c *compactor) once(ctx context.Context) api.Compaction {
	start := time.Now()
	at := start
	if c.now != nil {
		at = c.now()
	}
	removed, err := c.store.Compact(ctx, c.cfg.Retention, at)
	out := api.Compaction{At: at, Took: time.Since(start), Removed: removed}
	if err != nil {
		out.Error = err.Error()
		c.log.Warn("store compaction", "err", err)
	}
	c.mu.Lock()
	c.last = &out
	c.mu.Unlock()
	if removed != (store.Compacted{}) || err != nil {
		msg := fmt.Sprintf("store compacted in %s: removed %d events, %d closed incidents, %d steps (retention: events %s or %d, closed incidents %s or %d)",
			out.Took.Round(time.Millisecond), removed.Events, removed.Incidents, removed.Steps,
			c.cfg.Retention.EventsMaxAge, c.cfg.Retention.EventsMax, c.cfg.Retention.ClosedMaxAge, c.cfg.Retention.ClosedMax)
		if err != nil {
			msg += "; stopped by: " + err.Error()
		}
		if jerr := c.store.AppendEvents(ctx, model.Event{At: at, Kind: "store", Subject: "store", Message: msg}); jerr != nil {
			c.log.Warn("journal the store compaction", "err", jerr)
		}
	}
	return out
}

// records is the store as the API reads it, with its report.
type records struct {
	store.Store
	c *compactor
}

func (r records) StoreReport(ctx context.Context) (api.StoreReport, error) {
	size, err := r.Size(ctx)
	if err != nil {
		return api.StoreReport{}, err
	}
	kind := "mysql"
	if r.Exclusive() {
		kind = "sqlite"
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return api.StoreReport{Kind: kind, Size: size, Retention: r.c.cfg.Retention, CompactEvery: r.c.cfg.CompactEvery, LastCompaction: r.c.last}, nil
}
