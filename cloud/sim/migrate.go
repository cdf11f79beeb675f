package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Vigil's own migrations (cloud.Migrator), beside the operators' ones (LiveMigrate,
// Migrate and ConfirmResize on Cloud, which name their destination and take no
// context): Nova's API rules, the scheduler's choice when no target is given, and
// the failures a test or the simulation injects (FailNext, LoseAnswers on ops
// "live-migrate", "cold-migrate", "confirm-resize"; FailMigrations).

// Migrator returns Vigil's view of the cloud's migrations.
func (c *Cloud) Migrator() cloud.Migrator { return migrator{c} }

type migrator struct{ c *Cloud }

// FailMigrations makes the migrations of a server accepted, then fail: the server
// goes back to ACTIVE on its source, its copy never moved (Nova's rollback after a
// failed pre-check on the destination, or a scheduler that found no host after
// the API accepted the request).
func (c *Cloud) FailMigrations(id string, fail bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.migrateFail == nil {
		c.migrateFail = map[string]bool{}
	}
	c.migrateFail[id] = fail
}

// LiveMigrate implements cloud.Migrator.
func (m migrator) LiveMigrate(ctx context.Context, id, target string) error {
	return m.c.vigilMove("live-migrate", cloud.ActionLiveMigration, id, target)
}

// ColdMigrate implements cloud.Migrator.
func (m migrator) ColdMigrate(ctx context.Context, id, target string) error {
	return m.c.vigilMove("cold-migrate", cloud.ActionMigrate, id, target)
}

// ConfirmResize implements cloud.Migrator: like the operator's, with the API's
// failures.
func (m migrator) ConfirmResize(ctx context.Context, id string) error {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("confirm-resize"); err != nil {
		return err
	}
	s, err := c.serverLocked("confirm-resize", id)
	if err != nil {
		return err
	}
	if s.status != model.StatusVerify {
		return fmt.Errorf("confirm-resize %s: %w: status %s is not VERIFY_RESIZE", id, cloud.ErrConflict, s.status)
	}
	s.status = model.StatusActive
	if len(s.copies) == 0 {
		s.status = model.StatusShutoff
	}
	s.actions = append(s.actions, model.InstanceAction{Action: cloud.ActionConfirmResize, Start: c.now()})
	c.touchLocked(s)
	return c.answer("confirm-resize")
}

// vigilMove is a migration Vigil asked for. Like Nova's API: a live migration
// needs an ACTIVE server, a cold one ACTIVE or SHUTOFF, no task in flight (409);
// no target lets the scheduler pick an up, enabled host with room, and none found
// is "No valid host was found" (400: terminal).
func (c *Cloud) vigilMove(op, kind, id, target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call(op); err != nil {
		return err
	}
	s, err := c.serverLocked(op, id)
	if err != nil {
		return err
	}
	allowed := []string{model.StatusActive}
	if kind == cloud.ActionMigrate {
		allowed = append(allowed, model.StatusShutoff)
	}
	if s.task != "" || !slices.Contains(allowed, s.status) {
		return fmt.Errorf("%s %s: %w: cannot migrate while status %s task %q", op, id, cloud.ErrConflict, s.status, s.task)
	}
	if target == "" {
		if target = c.pickHostLocked(s); target == "" {
			return cloud.Terminal(fmt.Errorf("%s %s: No valid host was found: no other compute host is up with room", op, id))
		}
	}
	var start func(*server)
	switch {
	case c.migrateFail[id] || c.broken[id]: // a broken server's migration rolls back (never ERROR with its copy moved)
		start = c.failedMigration(kind)
	case kind == cloud.ActionLiveMigration:
		start = c.liveMigration(target, c.cfg.ActionLatency)
	default:
		start = c.coldMigration(target, kind)
	}
	if err := c.moveLocked(id, target, kind, start); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return c.answer(op)
}

// failedMigration: accepted, then rolled back by the source's compute: ACTIVE (or
// as it was) on the source, where its copy never stopped.
func (c *Cloud) failedMigration(kind string) func(*server) {
	return func(s *server) {
		src, was := s.host, s.status
		status, task := model.StatusMigrating, "migrating"
		if kind == cloud.ActionMigrate {
			status, task = model.StatusResize, "resize_prep"
		}
		broken := c.broken[s.id]
		delete(c.broken, s.id) // the rollback is the failure: not an ERROR besides
		c.startLocked(s, kind, status, task,
			phase{wait: c.cfg.ActionLatency, by: src, do: func(s *server) { s.status, s.task = was, "" }})
		if broken {
			c.broken[s.id] = true
		}
	}
}
