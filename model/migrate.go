package model

// Moving servers off a live host (issue 15): the drain operation and the
// confirmation a cold migration needs.

// KindDrain is the subject kind of a drain: an operator asked Vigil to move every
// protected server off a live host (Subject{KindDrain, host}). It is its own kind so
// that a failure of the same host still opens its own host incident (fence,
// evacuate), which a drain never answers.
const KindDrain = "drain"

// ActConfirmMigrate confirms a cold migration whose server waits in VERIFY_RESIZE
// on its new host (Nova's confirmResize). Planned by Vigil after its own
// cold-migrate, never listed in a policy's ladder.
const ActConfirmMigrate Action = "confirm-migrate"

// DrainLadder is what a drain tries for each protected server: a live migration,
// and a cold one when the live one is refused or fails.
var DrainLadder = []Action{ActLiveMigrate, ActColdMigrate}

// RuleDrain is the rule of a drain incident: an operator's request.
const RuleDrain = "operator-drain"

// IsMove reports whether an action moves a server to another host while its
// source lives (a migration, or its confirmation).
func IsMove(a Action) bool {
	return a == ActLiveMigrate || a == ActColdMigrate || a == ActConfirmMigrate
}
