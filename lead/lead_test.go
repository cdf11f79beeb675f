package lead

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// shared is the SQLite store as if several processes shared it (as a MariaDB one
// is): no replica may take a lease by force.
type shared struct{ *sqlite.DB }

func (shared) Exclusive() bool { return false }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// A standby takes a shard over only once its leader stopped renewing for a whole
// TTL on the standby's own clock; the old leader, woken from its pause, may act no
// more (Epoch 0 at once, by its own clock) and its renewal is refused.
func TestStandbyTakesOverOnlyAfterATTLOfSilence(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := shared{db}
	ttl := 8 * time.Second
	// The two clocks are a minute apart: only differences of one clock are used.
	ca := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	cb := &clock{ca.t.Add(time.Minute)}
	a := New(st, "a", nil, model.LeaseTiming{TTL: ttl}, ca.now)
	b := New(st, "b", nil, model.LeaseTiming{TTL: ttl}, cb.now)
	step := func(d time.Duration, ks ...*Keeper) {
		ca.t, cb.t = ca.t.Add(d), cb.t.Add(d)
		for _, k := range ks {
			if err := k.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(0, a)
	step(0, b)
	if a.Epoch(model.DefaultShard) == 0 || b.Epoch(model.DefaultShard) != 0 {
		t.Fatalf("a shard never led: a leads %v, b %v; want a only", a.Led(), b.Led())
	}
	epochA := a.Epoch(model.DefaultShard)
	// a renews every quarter TTL: b never takes over, however long.
	for range 20 {
		step(ttl/4, a, b)
		if b.Epoch(model.DefaultShard) != 0 {
			t.Fatalf("b took the shard while a renewed: %v", b.Led())
		}
	}
	// a pauses: b waits a whole TTL from the last version it saw change.
	paused := ca.t
	for d := time.Duration(0); d < ttl; d += ttl / 4 {
		step(ttl/4, b)
		if ca.t.Sub(paused) < ttl && b.Epoch(model.DefaultShard) != 0 {
			t.Fatalf("b took over %s after a's last renewal, before a TTL (%s)", ca.t.Sub(paused), ttl)
		}
	}
	step(ttl/4, b)
	epochB := b.Epoch(model.DefaultShard)
	if epochB == 0 || epochB <= epochA {
		t.Fatalf("b did not take over after %s of silence: b leads %v (a's epoch %d)", ca.t.Sub(paused), b.Led(), epochA)
	}
	// a wakes: by its own clock its last renewal is too old to act on, before it
	// even asks the store; then its renewal is refused.
	if e := a.Epoch(model.DefaultShard); e != 0 {
		t.Fatalf("a, woken after %s, still may act under epoch %d", ca.t.Sub(paused), e)
	}
	if err := a.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(a.Led()) != 0 {
		t.Fatalf("a leads %v after b took over", a.Led())
	}
	if err := st.CheckLease(ctx, epochA); err == nil {
		t.Fatalf("the store still accepts a's epoch %d", epochA)
	}
	// b stops cleanly: a takes the shard at its next tick, not a TTL later.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	step(ttl/4, a)
	if a.Epoch(model.DefaultShard) <= epochB {
		t.Fatalf("a did not take the released shard at once: %v", a.Led())
	}
}

// Three replicas over six shards each lead two; when one dies, the other two take
// its shards over (within a TTL and a renewal), three each.
func TestShardsSharedAndTakenOver(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := shared{db}
	shards := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	c := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	ttl := 8 * time.Second
	var ks []*Keeper
	for _, id := range []string{"r1", "r2", "r3"} {
		k := New(st, id, shards, model.LeaseTiming{TTL: ttl}, c.now)
		if err := st.Heartbeat(ctx, store.Replica{ID: id, Seen: c.t}); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	tick := func(live []*Keeper) {
		for _, k := range live {
			if err := k.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(ttl / 4)
	}
	for range 3 {
		tick(ks)
	}
	for _, k := range ks {
		if n := len(k.Led()); n != 2 {
			t.Fatalf("%s leads %v: want two of six shards each", k.ID, k.Led())
		}
	}
	dead := ks[2].Led()
	start := c.t
	for i := 0; ; i++ {
		tick(ks[:2])
		if len(ks[0].Led())+len(ks[1].Led()) == 6 {
			break
		}
		if c.t.Sub(start) > ttl+2*ttl/4 {
			t.Fatalf("r3's shards %v not taken over %s after it died: r1 %v, r2 %v", dead, c.t.Sub(start), ks[0].Led(), ks[1].Led())
		}
	}
	if len(ks[0].Led()) != 3 || len(ks[1].Led()) != 3 {
		t.Fatalf("shares after the takeover: r1 %v, r2 %v; want three each", ks[0].Led(), ks[1].Led())
	}
	t.Logf("r3's shards taken over %s after its last renewal (TTL %s)", c.t.Sub(start), ttl)
}
