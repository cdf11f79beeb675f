package sim

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Seeds 2104, 2835: a protected server whose cold migration or resize awaits its
// owner's confirmation (VERIFY_RESIZE), its one copy running on its new host, is a
// running server: the owner's decision (confirm or revert) is pending, no failure is,
// and the liveness check (invariant 6) asks nothing of Vigil for it. The same server
// with no copy running (its new host lost its power) is a failure to be answered.
func TestAwaitingConfirmationIsNotAFailure(t *testing.T) {
	cfg := SmallConfig()
	cfg.Settings = []string{}
	w, err := newWorld(1, cfg, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.db.Close()
	id := slices.Sorted(maps.Keys(w.prot))[0]
	src := w.cloud.ServerHost(id)
	dest := w.hosts[0]
	if dest == src {
		dest = w.hosts[1]
	}
	if err := w.cloud.Migrate(id, dest, false); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(10 * time.Second)
	if s, _ := w.cloud.Server(id); s.Status != "VERIFY_RESIZE" || s.Host != dest {
		t.Fatalf("the fixture must reach VERIFY_RESIZE on %s: %+v", dest, s)
	}
	w.checkEnd()
	if len(w.viol) != 0 {
		t.Fatalf("awaiting confirmation, running on %s: violations %v, want none", dest, w.viol)
	}
	_ = w.cloud.KillHost(dest)
	w.now = w.now.Add(time.Minute)
	w.checkEnd()
	if !slices.ContainsFunc(w.viol, func(v Violation) bool { return v.Invariant == 6 && strings.Contains(v.What, id) }) {
		t.Fatalf("awaiting confirmation, no copy running: violations %v, want invariant 6 for %s", w.viol, id)
	}
}
