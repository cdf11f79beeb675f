package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// A host put in maintenance is still in maintenance after the file is reopened
// (a restarted Vigil must not judge, fence or evacuate it), with its reason and
// exact start; ending it ends it, once.
func TestMaintenanceSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	db := open(t, path)
	if err := db.SetHostMaintenance(ctx, model.Maintenance{Host: "h1", Reason: "firmware", Since: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordHostReturn(ctx, "h2", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = open(t, path)
	m, err := db.HostMaintenance(ctx)
	if err != nil || len(m) != 1 || m["h1"].Reason != "firmware" || !m["h1"].Since.Equal(t0) {
		t.Fatalf("after reopen: %+v, %v", m, err)
	}
	if r, err := db.HostReturns(ctx); err != nil || !r["h2"].Equal(t0.Add(time.Minute)) {
		t.Fatalf("host returns after reopen: %v, %v", r, err)
	}
	if err := db.ClearHostMaintenance(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := db.ClearHostMaintenance(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ending a maintenance twice: %v, want not found", err)
	}
	if m, _ := db.HostMaintenance(ctx); len(m) != 0 {
		t.Fatalf("after clear: %+v", m)
	}
}
