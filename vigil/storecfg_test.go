package vigil

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// The store section sets the retention and the compaction period; left out, the
// defaults bound the store; a wrong value is refused naming its field.
func TestConfigStoreRetention(t *testing.T) {
	cfg, err := ParseConfig([]byte("store: {retention: {events_max_age: 24h, events_max: 500, closed_max_age: 0s, closed_max: 10}, compact_every: 5m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := StoreConfig{Retention: store.Retention{EventsMaxAge: 24 * time.Hour, EventsMax: 500, ClosedMax: 10}, CompactEvery: 5 * time.Minute}
	if cfg.Store != want {
		t.Fatalf("store section: %+v, want %+v", cfg.Store, want)
	}
	if cfg, err := ParseConfig(nil); err != nil || cfg.Store != DefaultStoreConfig() || cfg.Store.Retention.EventsMax == 0 {
		t.Fatalf("no store section: %+v, %v; want the bounded defaults", cfg.Store, err)
	}
	for bad, field := range map[string]string{
		"store: {retention: {events_max: -1}}\n":      "store.retention.events_max",
		"store: {retention: {events_max_age: -1h}}\n": "store.retention.events_max_age",
		"store: {retention: {closed_max_age: 30}}\n":  "store.retention.closed_max_age",
		"store: {retention: {event_max: 10}}\n":       "events_max",
		"store: {compact_every: 0s}\n":                "store.compact_every",
		"store: {retension: {events_max: 10}}\n":      "retention",
		"stor: {retention: {events_max: 10}}\n":       "store",
		"store: {retention: {closed_max: lots}}\n":    "store.retention.closed_max",
	} {
		_, err := ParseConfig([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%q: %v, want an error naming %s", bad, err, field)
		}
	}
}

// A compaction by a leader removes what the retention says and journals it as an
// event an operator can read; a standby's loop leaves the store alone.
func TestCompactorJournalsWhatItRemoved(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		if err := db.AppendEvents(ctx, model.Event{At: now.Add(-time.Duration(i) * 24 * time.Hour), Kind: "verdict", Message: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	c := &compactor{store: db, cfg: StoreConfig{Retention: store.Retention{EventsMaxAge: 72 * time.Hour}, CompactEvery: time.Hour},
		leads: func() bool { return true }, now: func() time.Time { return now }}
	out := c.once(ctx)
	if out.Removed.Events != 6 || out.Error != "" {
		t.Fatalf("compaction: %+v, want 6 events removed (older than 72h)", out)
	}
	evs, _ := db.Events(ctx, 0, 100)
	last := evs[len(evs)-1]
	if len(evs) != 5 || last.Kind != "store" || !strings.Contains(last.Message, "removed 6 events") {
		t.Fatalf("events after compaction: %d, last %+v; want 4 kept and the compaction journaled", len(evs), last)
	}
	rep, err := records{db, c}.StoreReport(ctx)
	if err != nil || rep.Kind != "sqlite" || rep.Size.Events != 5 || rep.LastCompaction == nil || rep.LastCompaction.Removed.Events != 6 {
		t.Fatalf("store report: %+v, %v", rep, err)
	}
}
