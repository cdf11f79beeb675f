package openstack

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack/novatime"
	"github.com/vigil-ha/vigil/model"
)

func (d *Driver) action(ctx context.Context, op, server string, body any) error {
	return d.send(ctx, op, http.MethodPost, d.compute.ServiceURL("servers", server, "action"), body)
}

// ResetState implements cloud.Actor: os-resetState to error, which clears the task.
func (d *Driver) ResetState(ctx context.Context, server string) error {
	if err := d.action(ctx, "reset-state", server, map[string]any{"os-resetState": map[string]string{"state": "error"}}); err != nil {
		return fmt.Errorf("reset-state %s: %w", server, err)
	}
	return nil
}

// Reboot implements cloud.Actor.
func (d *Driver) Reboot(ctx context.Context, server string, hard bool) error {
	op, typ := "reboot", "SOFT"
	if hard {
		op, typ = "hard-reboot", "HARD"
	}
	if err := d.action(ctx, op, server, map[string]any{"reboot": map[string]string{"type": typ}}); err != nil {
		return fmt.Errorf("%s %s: %w", op, server, err)
	}
	return nil
}

// Rebuild implements cloud.Actor: it reads the server's own image and rebuilds from
// it, so the ID, name, ports and volumes stay. A server booted from a volume has no
// image to rebuild from: that is terminal.
func (d *Driver) Rebuild(ctx context.Context, server string) error {
	var doc struct {
		Server novaServer `json:"server"`
	}
	if err := d.get(ctx, "show-server", d.compute.ServiceURL("servers", server), &doc); err != nil {
		return fmt.Errorf("rebuild %s: read its image: %w", server, err)
	}
	img := imageID(doc.Server.Image)
	if img == "" {
		return cloud.Terminal(fmt.Errorf("rebuild %s: the server was booted from a volume and has no image to rebuild from", server))
	}
	if err := d.action(ctx, "rebuild", server, map[string]any{"rebuild": map[string]string{"imageRef": img}}); err != nil {
		return fmt.Errorf("rebuild %s from image %s: %w", server, img, err)
	}
	return nil
}

// Evacuate implements cloud.Actor: {"evacuate": {}} lets Nova's scheduler place the
// server; a target host is passed as is (2.29+: host optional; 2.68+: no force;
// 2.14+: no onSharedStorage). Nova refuses with 400 while the source compute
// service is up: that comes back as ErrConflict, since fencing or force-down
// changes the answer.
func (d *Driver) Evacuate(ctx context.Context, server, target string) error {
	body := map[string]any{}
	if target != "" {
		body["host"] = target
	}
	err := d.action(ctx, "evacuate", server, map[string]any{"evacuate": body})
	if err == nil {
		return nil
	}
	if code, msg := statusOf(err); code == http.StatusBadRequest && strings.Contains(msg, "is still in use") {
		return fmt.Errorf("evacuate %s refused: source compute service is up (force it down once the host is fenced): %w: Nova says: %s",
			server, cloud.ErrConflict, msg)
	}
	if target != "" {
		return fmt.Errorf("evacuate %s to %s: %w", server, target, err)
	}
	return fmt.Errorf("evacuate %s: %w", server, err)
}

// LiveMigrate moves a running server; host "" lets Nova's scheduler pick one.
// block_migration "auto" (2.25+) lets Nova choose by the storage it finds.
func (d *Driver) LiveMigrate(ctx context.Context, server, host string) error {
	var h any
	if host != "" {
		h = host
	}
	err := d.action(ctx, "live-migrate", server,
		map[string]any{"os-migrateLive": map[string]any{"host": h, "block_migration": "auto"}})
	if err != nil {
		return fmt.Errorf("live-migrate %s: %w", server, err)
	}
	return nil
}

// Migrate cold-migrates a server (host "" lets Nova pick; a host needs 2.56+). The
// server ends in VERIFY_RESIZE until ConfirmResize.
func (d *Driver) Migrate(ctx context.Context, server, host string) error {
	var body any
	if host != "" {
		body = map[string]string{"host": host}
	}
	if err := d.action(ctx, "migrate", server, map[string]any{"migrate": body}); err != nil {
		return fmt.Errorf("migrate %s: %w", server, err)
	}
	return nil
}

// ConfirmResize confirms a cold migration (or resize) in VERIFY_RESIZE.
func (d *Driver) ConfirmResize(ctx context.Context, server string) error {
	if err := d.action(ctx, "confirm-resize", server, map[string]any{"confirmResize": nil}); err != nil {
		return fmt.Errorf("confirm resize of %s: %w", server, err)
	}
	return nil
}

type novaAction struct {
	Action    string `json:"action"`
	RequestID string `json:"request_id"`
	StartTime string `json:"start_time"`
	UserID    string `json:"user_id"`
	Message   string `json:"message"`
}

func (d *Driver) rawActions(ctx context.Context, server string) ([]novaAction, error) {
	var doc struct {
		Actions []novaAction `json:"instanceActions"`
	}
	if err := d.get(ctx, "actions", d.compute.ServiceURL("servers", server, "os-instance-actions"), &doc); err != nil {
		return nil, err
	}
	return doc.Actions, nil
}

// Actions implements cloud.Actor: Nova's instance actions, oldest first.
func (d *Driver) Actions(ctx context.Context, server string) ([]model.InstanceAction, error) {
	raw, err := d.rawActions(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("instance actions of %s: %w", server, err)
	}
	out := make([]model.InstanceAction, 0, len(raw))
	// Nova lists newest first, and start times have one-second resolution: reverse
	// its order, then sort stably, so that ties keep Nova's order.
	for _, a := range slices.Backward(raw) {
		t, err := novatime.Parse(a.StartTime)
		if err != nil {
			return nil, fmt.Errorf("instance actions of %s: action %s (%s): %w", server, a.Action, a.RequestID, err)
		}
		out = append(out, model.InstanceAction{Action: a.Action, RequestID: a.RequestID, Start: t})
	}
	slices.SortStableFunc(out, func(a, b model.InstanceAction) int { return a.Start.Compare(b.Start) })
	return out, nil
}
