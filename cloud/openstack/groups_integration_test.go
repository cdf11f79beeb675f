package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// A Nova server group and server metadata, read the way clusters follow them; a
// stack that does not exist is ErrNotFound (Heat's stacks themselves:
// vigil.TestIntegrationHeatStackProtectedByTag).
func TestIntegrationServerGroupAndMetadata(t *testing.T) {
	name := peerCloud(t)
	d := newDriver(t, name)
	ctx := context.Background()
	pre := uniquePrefix(t)

	var sg struct {
		Group struct {
			ID string `json:"id"`
		} `json:"server_group"`
	}
	_, err := d.compute.Post(ctx, d.compute.ServiceURL("os-server-groups"),
		map[string]any{"server_group": map[string]any{"name": pre, "policy": "anti-affinity"}}, &sg, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		t.Fatalf("create server group: %v", err)
	}
	t.Cleanup(func() { _, _ = d.compute.Delete(ctx, d.compute.ServiceURL("os-server-groups", sg.Group.ID), nil) })

	srv := map[string]any{"name": pre, "flavorRef": "1", "imageRef": tinyImage(t, d), "networks": "none",
		"metadata": map[string]string{model.MetaCluster: pre, model.MetaPolicy: "default"}}
	if err := d.send(ctx, "test-create", http.MethodPost, d.compute.ServiceURL("servers"),
		map[string]any{"server": srv, "os:scheduler_hints": map[string]string{"group": sg.Group.ID}}); err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Cleanup(func() { deleteServers(t, d, pre) })
	var id string
	waitFor(t, 90*time.Second, "server "+pre+" ACTIVE", func() (bool, string) {
		ss := findServers(t, d, pre)
		if len(ss) != 1 {
			return false, fmt.Sprintf("%d servers", len(ss))
		}
		id = ss[0].ID
		return ss[0].Status == model.StatusActive, ss[0].Status
	})

	for _, ref := range []string{sg.Group.ID, pre} {
		g, err := d.ServerGroup(ctx, ref)
		if err != nil || g.ID != sg.Group.ID || !slices.Equal(g.Members, []string{id}) || g.Policy != "anti-affinity" {
			t.Fatalf("ServerGroup(%s) = %+v, %v; want %s with member %s, anti-affinity", ref, g, err, sg.Group.ID, id)
		}
	}
	if _, err := d.ServerGroup(ctx, pre+"-none"); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("a missing server group: %v, want ErrNotFound", err)
	}

	all, err := d.ListServers(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(s model.Server) bool { return s.ID == id })
	if i < 0 {
		t.Fatalf("%s not listed", id)
	}
	if v, ok := all[i].Metadata.Get(model.MetaCluster); !ok || v != pre {
		t.Fatalf("listed metadata of %s: %q, want %s=%s", id, all[i].Metadata.Map(), model.MetaCluster, pre)
	}
	// Nova does not change a server's updated_at when only its metadata changes
	// (the metadata lives in a table of its own): a changes-since listing misses it,
	// the next full listing shows it. With no key left it is known to be empty.
	since := all[i].Updated.Add(time.Second)
	time.Sleep(1100 * time.Millisecond) // updated_at has a resolution of a second
	for _, k := range []string{model.MetaCluster, model.MetaPolicy} {
		if _, err := d.compute.Delete(ctx, d.compute.ServiceURL("servers", id, "metadata", k), nil); err != nil {
			t.Fatalf("delete metadata %s: %v", k, err)
		}
	}
	changed, err := d.ListServers(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a changes-since listing after the metadata change lists the server: %v",
		slices.ContainsFunc(changed, func(s model.Server) bool { return s.ID == id }))
	all, err = d.ListServers(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(all, func(s model.Server) bool { return s.ID == id })
	if i < 0 || all[i].Metadata != model.MetadataNone {
		t.Fatalf("after the keys' removal the full listing says %q, want known and empty", all[i].Metadata)
	}

	if _, err := d.Stack(ctx, pre+"-no-stack"); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("a missing stack: %v, want ErrNotFound (or start the peer with --with cinder,heat)", err)
	}
}
