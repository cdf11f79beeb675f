package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// sharedStore is the store as one of several replicas on it sees it: shared, so
// no lease is taken by force.
type sharedStore struct{ *sqlite.DB }

func (sharedStore) Exclusive() bool { return false }

// A host return asked of a standby does not force the host's service up: that is
// an action, taken only by the leader of the host's shard under a valid lease
// (the operator is told to ask the leader), as a recovery step is.
func TestStandbyDoesNotForceAHostUp(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cfg.Sleep = func(_ context.Context, d time.Duration) error { w.now = w.now.Add(d); return nil }
	w.cfg.ReturnWait = 10 * time.Second
	w.newEngine()
	w.tick()
	w.cluster("web", w.ids[0], w.ids[1]) // on host-1
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(10*time.Minute, "host-1's servers evacuated", func() bool {
		incs, err := w.db.Incidents(context.Background(), 10)
		for _, in := range incs {
			if err == nil && in.Subject.ID == "host-1" && in.State == model.IncidentResolved {
				return true
			}
		}
		return false
	})
	if err := w.cloud.PowerOnHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.run(2 * time.Minute) // its compute reports again

	cfg := w.cfg
	cfg.Store, cfg.ReplicaID, cfg.OnEvent = sharedStore{w.db}, "standby", nil
	standby, err := engine.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if standby.Leads() {
		t.Fatal("the standby leads a shard its leader renews")
	}
	r, err := standby.ReturnHost(context.Background(), "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Returned || !w.cloud.Truth("host-1").ForcedDown {
		t.Fatalf("the standby forced host-1 up (returned %v, still forced down %v): %+v", r.Returned, w.cloud.Truth("host-1").ForcedDown, r)
	}
	// The leader can: the host was ready to return.
	if r, err := w.eng.ReturnHost(context.Background(), "host-1"); err != nil || !r.Returned || w.cloud.Truth("host-1").ForcedDown {
		t.Fatalf("the leader did not return host-1: %+v, %v", r, err)
	}
}
