package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack/novatime"
	"github.com/vigil-ha/vigil/model"
)

// novaServer is the part of a server in GET /servers/detail that Vigil reads.
type novaServer struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	Host      string          `json:"OS-EXT-SRV-ATTR:host"`
	TaskState *string         `json:"OS-EXT-STS:task_state"`
	VMState   string          `json:"OS-EXT-STS:vm_state"`
	Image     json.RawMessage `json:"image"`
	Updated   string          `json:"updated"`
	// Metadata is the user metadata (vigil:cluster defines clusters); {} when none.
	Metadata map[string]string `json:"metadata"`
	Flavor   novaFlavor        `json:"flavor"` // embedded at 2.47+
}

type serverPage struct {
	Servers []novaServer `json:"servers"`
	Links   []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"servers_links"`
}

// imageID reads "image": {"id": ...}, or "" for a server booted from a volume.
func imageID(raw json.RawMessage) string {
	var img struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &img) == nil {
		return img.ID
	}
	return ""
}

type intentEntry struct {
	updated string
	intent  model.PowerIntent
}

// ListServers implements cloud.Lister: one GET per page of 1000 (Nova's default
// max_limit), plus one instance-actions GET for each SHUTOFF server that changed
// since the driver last saw it. since is sent to the second (Nova compares
// updated_at >= changes-since), so the answer may include a little more than
// asked, never less; pass a time read on Nova's clock (CloudNow), less a margin
// for the services that stamp updated_at.
func (d *Driver) ListServers(ctx context.Context, since time.Time) ([]model.Server, error) {
	q := url.Values{"all_tenants": {"1"}}
	if !since.IsZero() {
		q.Set("changes-since", since.UTC().Format(time.RFC3339))
	}
	next := d.compute.ServiceURL("servers", "detail") + "?" + q.Encode()
	var raw []novaServer
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			return nil, fmt.Errorf("list servers: more than 10000 pages; Nova's pagination links loop")
		}
		var page serverPage
		if err := d.get(ctx, "list-servers", next, &page); err != nil {
			return nil, fmt.Errorf("list servers of cloud %q: %w", d.cloud, err)
		}
		raw = append(raw, page.Servers...)
		next = ""
		for _, l := range page.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if len(page.Servers) == 0 {
			next = ""
		}
	}
	out := make([]model.Server, 0, len(raw))
	seen := make(map[string]bool, len(raw))
	for _, ns := range raw {
		if seen[ns.ID] { // a server changed between two pages
			continue
		}
		seen[ns.ID] = true
		s := model.Server{ID: ns.ID, Name: ns.Name, Host: ns.Host, Status: ns.Status, Image: imageID(ns.Image),
			Metadata: model.MetadataOf(ns.Metadata)}
		s.Flavor = ns.Flavor.resources(s.Image == "")
		if ns.TaskState != nil {
			s.TaskState = *ns.TaskState
		}
		s.Updated, _ = novatime.Parse(ns.Updated)
		intent, err := d.intent(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("list servers of cloud %q: power intent of %s: %w", d.cloud, ns.ID, err)
		}
		s.Intent = intent
		out = append(out, s)
	}
	if since.IsZero() {
		d.mu.Lock()
		d.lastFull = d.cfg.Now()
		// forget the intents of servers that are gone
		for id := range d.intents {
			if !seen[id] {
				delete(d.intents, id)
			}
		}
		d.mu.Unlock()
	}
	return out, nil
}

// intent decides the server's power intent (see the package doc).
func (d *Driver) intent(ctx context.Context, ns novaServer) (model.PowerIntent, error) {
	switch ns.Status {
	case model.StatusDeleted:
		d.mu.Lock()
		delete(d.intents, ns.ID)
		d.mu.Unlock()
		return model.IntentUnknown, nil
	case model.StatusShutoff:
	default:
		return model.IntentOn, nil
	}
	if ns.VMState != "stopped" {
		return model.IntentOn, nil
	}
	d.mu.Lock()
	e, ok := d.intents[ns.ID]
	d.mu.Unlock()
	if ok && e.updated == ns.Updated {
		return e.intent, nil
	}
	acts, err := d.rawActions(ctx, ns.ID)
	if errors.Is(err, cloud.ErrNotFound) {
		return model.IntentUnknown, nil // deleted since the listing: the next poll says so
	}
	if err != nil {
		return model.IntentUnknown, err
	}
	intent := d.intentFromActions(acts)
	d.mu.Lock()
	d.intents[ns.ID] = intentEntry{updated: ns.Updated, intent: intent}
	d.mu.Unlock()
	return intent, nil
}

// intentFromActions: off when the newest action is a stop some user asked for.
func (d *Driver) intentFromActions(acts []novaAction) model.PowerIntent {
	newest := -1
	var newestAt time.Time
	for i, a := range acts {
		t, _ := novatime.Parse(a.StartTime)
		if newest < 0 || t.After(newestAt) {
			newest, newestAt = i, t
		}
	}
	if newest < 0 {
		return model.IntentOn
	}
	a := acts[newest]
	if a.Action == "stop" && d.isUser(a.UserID) {
		return model.IntentOff
	}
	return model.IntentOn
}

func (d *Driver) isUser(id string) bool {
	if id == "" {
		return false
	}
	for _, s := range d.cfg.ServiceUserIDs {
		if s == id {
			return false
		}
	}
	return true
}
