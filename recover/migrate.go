package recover

import (
	"context"
	"fmt"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// doMove carries out a migration step (live-migrate, cold-migrate, or the
// confirmation of a cold one); ok is false for any other action.
func (x *Executor) doMove(ctx context.Context, st model.Step) (ok bool, err error) {
	if !model.IsMove(st.Action) {
		return false, nil
	}
	if x.Migrator == nil {
		return true, cloud.Terminal(fmt.Errorf("%s %s: this cloud driver cannot migrate servers", st.Action, st.Server))
	}
	switch st.Action {
	case model.ActLiveMigrate:
		return true, x.Migrator.LiveMigrate(ctx, st.Server, st.Target)
	case model.ActColdMigrate:
		return true, x.Migrator.ColdMigrate(ctx, st.Server, st.Target)
	default:
		return true, x.Migrator.ConfirmResize(ctx, st.Server)
	}
}

// moveAction names the instance action Nova records for a migration step: its
// action log says, after a restart, whether the step was taken.
func moveAction(a model.Action) string {
	switch a {
	case model.ActLiveMigrate:
		return cloud.ActionLiveMigration
	case model.ActColdMigrate:
		return cloud.ActionMigrate
	case model.ActConfirmMigrate:
		return cloud.ActionConfirmResize
	}
	return ""
}
