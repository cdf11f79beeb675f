package sim

import (
	"testing"
	"time"
)

// Seed 1368 of issue 15: the destination of a live migration loses its power after
// the switch-over, before the source finishes the migration. Its copy went with the
// power: the source's post-migration must not make one reappear there.
func TestLiveMigrationDestinationDiesAfterSwitch(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	if err := w.LiveMigrate(id, "b", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	w.wait(6 * time.Second) // switched over: the copy runs on b
	if got := w.Copies()[id]; len(got) != 1 || got[0] != "b" {
		t.Fatalf("after the switch-over: copies %v, want [b]", got)
	}
	_ = w.KillHost("b")
	w.wait(time.Minute)
	if got := w.Copies()[id]; len(got) != 0 {
		t.Fatalf("destination b without power: copies %v, want none", got)
	}
}
