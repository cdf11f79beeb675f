package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// A drain asked seconds after its host lost its power (Nova still says its compute
// is up: its heartbeat is not stale yet) reads the host's BMC before it migrates:
// no migration is asked off a dead host, and the drain says why (sim seed 512 of
// issue 15).
func TestDrainReadsTheBMCOfItsHostFirst(t *testing.T) {
	w := drainWorld(t)
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Drain(context.Background(), "host-1"); err != nil {
		t.Fatalf("drain refused (Nova should still say up): %v", err)
	}
	for _, id := range w.ids[:3] {
		if n := w.actionsOf(id)[cloud.ActionLiveMigration]; n != 0 {
			t.Fatalf("server %s live-migrated off a host whose power was off\n%s", id, w.timeline())
		}
	}
	if inc := w.drainIncident(); inc.State != model.IncidentEscalated || !strings.Contains(inc.Reason, "migrate-needs-live-source: the BMC of host host-1 says its power is off") {
		t.Fatalf("drain %s (%s), want escalated: its BMC says off\n%s", inc.State, inc.Reason, w.timeline())
	}
}
