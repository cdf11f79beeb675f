package openstack

import (
	"context"

	"github.com/vigil-ha/vigil/cloud"
)

var _ cloud.Migrator = (*Driver)(nil)

// ColdMigrate implements cloud.Migrator: Nova's migrate (target "" lets its
// scheduler pick); the server then waits in VERIFY_RESIZE until ConfirmResize.
// Nova's "No valid host was found" comes back as 400: terminal, another try
// finds no more room.
func (d *Driver) ColdMigrate(ctx context.Context, server, target string) error {
	return d.Migrate(ctx, server, target)
}
