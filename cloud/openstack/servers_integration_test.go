package openstack

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// pollCalls is the number of API calls one poll (ListServers + ListHosts) made.
func pollCalls(t *testing.T, d *Driver, since time.Time) (int, []model.Server) {
	t.Helper()
	ctx := context.Background()
	before := d.Calls()
	servers, err := d.ListServers(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ListHosts(ctx); err != nil {
		t.Fatal(err)
	}
	after := d.Calls()
	n := 0
	for _, op := range []string{"list-servers", "list-hosts", "actions", "auth"} {
		n += after[op] - before[op]
	}
	return n, servers
}

func TestIntegrationPollCostAndChangesSince(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	prefix := uniquePrefix(t)
	first := bootServers(t, d, prefix+"-a", 3, "")
	// a first poll reads the instance actions of SHUTOFF servers it has not seen
	// (left by others); the measured poll is the steady state, with 3 then 20
	pollCalls(t, d, time.Time{})
	calls3, all3 := pollCalls(t, d, time.Time{})

	// changes-since has a one-second resolution: start after the next whole second
	t0 := time.Now().Add(time.Second).Truncate(time.Second)
	waitFor(t, 3*time.Second, "clock past t0", func() (bool, string) { return time.Now().After(t0), "" })
	second := bootServers(t, d, prefix+"-b", 17, "")
	pollCalls(t, d, time.Time{})
	calls20, all20 := pollCalls(t, d, time.Time{})
	t.Logf("API calls per poll (ListServers+ListHosts): %d with %d servers listed (3 ours), %d with %d servers listed (20 ours)",
		calls3, len(all3), calls20, len(all20))
	if calls3 != calls20 || calls20 != 2 {
		t.Fatalf("calls per poll: %d with %d servers, %d with %d servers; want 2 each", calls3, len(all3), calls20, len(all20))
	}
	if len(all20)-len(all3) < 17 {
		t.Fatalf("listed %d then %d servers: the 17 new ones are missing", len(all3), len(all20))
	}

	changed, err := d.ListServers(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]model.Server{}
	for _, s := range changed {
		ids[s.ID] = s
	}
	for _, id := range second {
		if s, ok := ids[id]; !ok || s.Status != model.StatusActive || s.Intent != model.IntentOn || s.Host == "" || s.Image == "" {
			t.Fatalf("changes-since %s: server %s missing or incomplete: %+v", t0.Format(time.RFC3339), id, s)
		}
	}
	for _, id := range first {
		if _, ok := ids[id]; ok {
			t.Fatalf("changes-since %s returned %s, booted and unchanged before then", t0.Format(time.RFC3339), id)
		}
	}
	t.Logf("changes-since %s: %d servers (the 17 booted since, none of the 3 before; others: deleted ones Nova touched)",
		t0.Format(time.RFC3339), len(changed))
}

func TestIntegrationRebootRebuild(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	ctx := context.Background()
	ids := bootServers(t, d, uniquePrefix(t), 1, "")
	id := ids[0]
	img := getServer(t, d, id).Image

	if err := d.Reboot(ctx, id, false); err != nil {
		t.Fatalf("soft reboot: %v", err)
	}
	waitStatus(t, d, id, model.StatusActive, 60*time.Second)
	if err := d.Reboot(ctx, id, true); err != nil {
		t.Fatalf("hard reboot: %v", err)
	}
	waitStatus(t, d, id, model.StatusActive, 60*time.Second)
	if err := d.Rebuild(ctx, id); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	s := waitStatus(t, d, id, model.StatusActive, 60*time.Second)
	if s.ID != id || s.Image != img {
		t.Fatalf("after rebuild: %+v, want same ID %s and image %s", s, id, img)
	}

	// a crashed server: ERROR, then rebuilt in place
	resetState(t, d, id, "error")
	waitStatus(t, d, id, model.StatusError, 10*time.Second)
	if err := d.Rebuild(ctx, id); err != nil {
		t.Fatalf("rebuild from ERROR: %v", err)
	}
	s = waitStatus(t, d, id, model.StatusActive, 60*time.Second)
	if s.ID != id {
		t.Fatalf("rebuild from ERROR changed the ID: %+v", s)
	}

	acts, err := d.Actions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
		if a.Start.IsZero() || a.RequestID == "" {
			t.Fatalf("action without time or request id: %+v", a)
		}
	}
	want := []string{"create", "reboot", "reboot", "rebuild", "resetState", "rebuild"}
	if !slices.Equal(names, want) {
		t.Fatalf("instance actions %v, want %v (oldest first)", names, want)
	}
	if !slices.IsSortedFunc(acts, func(a, b model.InstanceAction) int { return a.Start.Compare(b.Start) }) {
		t.Fatalf("actions not oldest first: %+v", acts)
	}

	// errors that retrying will not fix are terminal and name the server
	err = d.Reboot(ctx, "00000000-0000-0000-0000-000000000000", true)
	if !errors.Is(err, cloud.ErrNotFound) || !cloud.IsTerminal(err) {
		t.Fatalf("reboot of a missing server: %v, want terminal ErrNotFound", err)
	}
	t.Logf("missing server: %v", err)
	// a soft reboot of a server in a task is a conflict, with Nova's message
	if err := d.Reboot(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	err = d.Rebuild(ctx, id)
	if err == nil {
		waitStatus(t, d, id, model.StatusActive, 60*time.Second)
		t.Skip("Nova accepted a rebuild during a hard reboot (the fake driver finished first)")
	}
	if !errors.Is(err, cloud.ErrConflict) || cloud.IsTerminal(err) {
		t.Fatalf("rebuild during a hard reboot: %v, want a retryable ErrConflict", err)
	}
	t.Logf("conflict: %v", err)
	waitStatus(t, d, id, model.StatusActive, 60*time.Second)
}

func TestIntegrationUserStopIntent(t *testing.T) {
	name := peerCloud(t)
	admin := newDriver(t, name)
	demo := newDriver(t, name+"-demo")
	ctx := context.Background()
	prefix := uniquePrefix(t)
	ids := bootServersAs(t, admin, demo, prefix, 2, "")
	stopped, crashed := ids[0], ids[1]

	if err := demo.send(ctx, "test-stop", http.MethodPost, demo.compute.ServiceURL("servers", stopped, "action"),
		map[string]any{"os-stop": nil}); err != nil {
		t.Fatalf("stop as demo: %v", err)
	}
	waitStatus(t, admin, stopped, model.StatusShutoff, 60*time.Second)
	resetState(t, admin, crashed, "error")
	waitStatus(t, admin, crashed, model.StatusError, 10*time.Second)

	find := func(list []model.Server, id string) model.Server {
		for _, s := range list {
			if s.ID == id {
				return s
			}
		}
		t.Fatalf("server %s not listed", id)
		return model.Server{}
	}
	list, err := admin.ListServers(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s := find(list, stopped); s.Status != model.StatusShutoff || s.Intent != model.IntentOff {
		t.Fatalf("server stopped by its owner: %+v, want SHUTOFF with intent off", s)
	}
	if s := find(list, crashed); s.Status != model.StatusError || s.Intent != model.IntentOn {
		t.Fatalf("server in ERROR: %+v, want ERROR with intent on", s)
	}
	// the intent is cached by (id, updated): a second poll reads no instance actions
	before := admin.Calls()["actions"]
	if _, err := admin.ListServers(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if after := admin.Calls()["actions"]; after != before {
		t.Fatalf("second poll read instance actions %d times; unchanged servers must come from the cache", after-before)
	}

	// the same stop by a user configured as a service user is not an owner's intent
	acts, err := admin.rawActions(ctx, stopped)
	if err != nil {
		t.Fatal(err)
	}
	demoUser := acts[0].UserID
	svc, err := New(ctx, Config{CloudName: name, ServiceUserIDs: []string{demoUser}})
	if err != nil {
		t.Fatal(err)
	}
	list, err = svc.ListServers(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s := find(list, stopped); s.Intent != model.IntentOn {
		t.Fatalf("stop by a service user: intent %q, want on", s.Intent)
	}
	t.Logf("stopped by demo (%s): intent off; same stop counted as a service user's: intent on", demoUser)
}
