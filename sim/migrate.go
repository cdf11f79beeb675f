package sim

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// Vigil's migrations in the simulation: the driver passes them on to the cloud's
// Migrator, counting what the cloud carried out (invariant 3) and checking at the
// instant of each one that its source lives (invariant 10: a migration off a dead
// host is an evacuation without a fence in disguise, and never works anyway).
// The drain fault is an operator draining a host; its incident's outcome is checked
// when it closes (invariant 10 too).

// Migrator makes the engine find Vigil's migrations behind the driver.
func (d *driver) Migrator() cloud.Migrator { return migrator{d} }

type migrator struct{ d *driver }

func (m migrator) LiveMigrate(ctx context.Context, id, target string) error {
	m.d.mutated("livemigrate", id)
	m.d.checkSource("live-migrate", id)
	return m.d.count(id, cloud.ActionLiveMigration, m.d.cloud.Migrator().LiveMigrate(ctx, id, target))
}

func (m migrator) ColdMigrate(ctx context.Context, id, target string) error {
	m.d.mutated("coldmigrate", id)
	m.d.checkSource("cold-migrate", id)
	return m.d.count(id, cloud.ActionMigrate, m.d.cloud.Migrator().ColdMigrate(ctx, id, target))
}

func (m migrator) ConfirmResize(ctx context.Context, id string) error {
	m.d.mutated("confirmresize", id)
	return m.d.count(id, cloud.ActionConfirmResize, m.d.cloud.Migrator().ConfirmResize(ctx, id))
}

// checkSource (invariant 10): a migration is asked only off a host whose compute
// runs.
func (d *driver) checkSource(what, id string) {
	src := d.cloud.ServerHost(id)
	if t := d.cloud.Truth(src); !t.Alive {
		d.w.violate(10, "%s of %s off host %s whose compute is not running (power %s): a migration needs its source alive; a dead host's servers are evacuated after a fence",
			what, id, src, t.Power)
	}
}

// migrateSteps are the cloud's names of the migration steps (invariant 3).
var migrateSteps = map[model.Action]string{model.ActLiveMigrate: cloud.ActionLiveMigration,
	model.ActColdMigrate: cloud.ActionMigrate, model.ActConfirmMigrate: cloud.ActionConfirmResize}

// drain is an operator asking Vigil to drain a host (refused while it is not
// alive: logged). What it had to move is checked when its incident closes.
func (w *world) drain(host string) {
	if w.eng == nil {
		w.logf("operator cannot drain %s: Vigil is down", host)
		return
	}
	inc, err := w.engFor(host).Drain(context.Background(), host)
	switch {
	case errors.Is(err, engine.ErrDrainRefused):
		w.logf("drain of %s refused: %s", host, err)
	case err != nil:
		w.logf("drain of %s: %s", host, w.sameEverywhere(err))
	default:
		w.logf("drain of %s: incident %d (%d steps)", host, inc.ID, len(inc.Steps))
	}
}

// onDrainClosed (invariant 10): a drain that resolves leaves no protected server on
// its host; one that escalates names each protected server still there.
func (w *world) onDrainClosed(e model.Event) {
	host, ok := strings.CutPrefix(e.Subject, model.KindDrain+"/")
	if !ok || e.Kind != "incident" {
		return
	}
	resolved, escalated := strings.Contains(e.Message, " resolved: "), strings.Contains(e.Message, " escalated: ")
	if !resolved && !escalated {
		return
	}
	var left []string
	for _, s := range w.cloud.ServersOn(host) {
		if w.prot[s.ID] && s.Host == host && !slices.Contains(left, s.ID) {
			left = append(left, s.ID)
		}
	}
	for _, id := range left {
		if resolved {
			w.violate(10, "drain of %s resolved while protected server %s is still on it: %s", host, id, e.Message)
		} else if !strings.Contains(e.Message, id) {
			w.violate(10, "drain of %s escalated without naming protected server %s still on it: %s", host, id, e.Message)
		}
	}
}

// drainTarget draws the host an operator drains.
func drainTarget(rng interface{ IntN(int) int }, hosts []string) string {
	return hosts[rng.IntN(len(hosts))]
}
