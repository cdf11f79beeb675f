package openstack

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// TestIntegrationMigrations: live migration with the scheduler picking the host
// (host null, block_migration auto), then a cold migration confirmed; the server
// keeps its ID and ends ACTIVE on another host each time.
func TestIntegrationMigrations(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	ctx := context.Background()
	id := bootServers(t, d, uniquePrefix(t), 1, "")[0]
	from := getServer(t, d, id).Host

	if err := d.LiveMigrate(ctx, id, ""); err != nil {
		t.Fatalf("live-migrate: %v", err)
	}
	s := waitStatus(t, d, id, model.StatusActive, 90*time.Second)
	if s.Host == from {
		t.Fatalf("live migration left %s on %s", id, from)
	}
	t.Logf("live-migrated %s: %s -> %s", id, from, s.Host)

	from = s.Host
	if err := d.Migrate(ctx, id, ""); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	waitStatus(t, d, id, model.StatusVerify, 90*time.Second)
	if err := d.ConfirmResize(ctx, id); err != nil {
		t.Fatalf("confirm resize: %v", err)
	}
	s = waitStatus(t, d, id, model.StatusActive, 60*time.Second)
	if s.Host == from || s.ID != id {
		t.Fatalf("cold migration: %+v, want %s on another host than %s", s, id, from)
	}
	t.Logf("cold-migrated and confirmed %s: %s -> %s", id, from, s.Host)
}
