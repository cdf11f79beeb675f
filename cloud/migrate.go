package cloud

import "context"

// Migrator moves servers off a live host. Each call returns once the cloud accepted
// the request; where the server ends is seen by later observations.
type Migrator interface {
	// LiveMigrate moves a running server; target "" lets the cloud's scheduler pick
	// (Nova: os-migrateLive with host null and block_migration "auto", 2.30+).
	LiveMigrate(ctx context.Context, server, target string) error
	// ColdMigrate stops, moves and starts a server (Nova: migrate); it then waits in
	// VERIFY_RESIZE on its new host until ConfirmResize.
	ColdMigrate(ctx context.Context, server, target string) error
	// ConfirmResize confirms a cold migration waiting in VERIFY_RESIZE.
	ConfirmResize(ctx context.Context, server string) error
}

// ActionConfirmResize is the instance action Nova records for a confirmation.
const ActionConfirmResize = "confirmResize"
