package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

func (w *world) refresh() {
	w.t.Helper()
	if err := w.eng.RefreshClusters(context.Background()); err != nil {
		w.t.Fatalf("refresh: %v", err)
	}
}

func (w *world) clusterNamed(name string) (model.ClusterStatus, bool) {
	for _, c := range w.eng.Clusters() {
		if c.Name == name {
			return c, true
		}
	}
	return model.ClusterStatus{}, false
}

// protected: the engine protects id, and a cluster says so.
func (w *world) protected(id string) bool {
	in := false
	for _, c := range w.eng.Clusters() {
		in = in || slices.Contains(c.Members, id)
	}
	if in != w.eng.Protected(id) {
		w.t.Fatalf("server %s: in a cluster %v, but protected %v", id, in, w.eng.Protected(id))
	}
	return in
}

// A tagged stack is protected without anyone listing its servers; after its host
// dies its servers are the same servers (same IDs) elsewhere; a server the stack
// gains joins the cluster at the next refresh and one it loses leaves it.
func TestTaggedStackIsProtectedWithoutIDsAndFollowsUpdates(t *testing.T) {
	w := newWorld(t, 3, 2)
	a, b := w.ids[0], w.ids[1] // both on host-1
	w.cloud.CreateStack("st1", []string{model.TagProtect, "policy=default"}, a, b)
	w.cloud.CreateStack("untagged", nil, w.ids[2])
	w.refresh()
	c, ok := w.clusterNamed("st1")
	if !ok || !slices.Equal(c.Members, []string{a, b}) || c.Desired != 2 || c.Policy != "default" {
		t.Fatalf("cluster st1 = %+v (found %v), want members [%s %s], desired 2, policy default", c, ok, a, b)
	}
	if c.Source == nil || !c.Source.Discovered || c.Source.Kind != model.SourceHeatStack || !strings.Contains(c.Source.Recovery, "never deletes") {
		t.Fatalf("source %+v: want a discovered heat-stack saying it never recreates", c.Source)
	}
	if !w.protected(a) || !w.protected(b) || w.protected(w.ids[2]) {
		t.Fatal("the tagged stack's servers are not protected, or the untagged one's is")
	}
	if _, ok := w.clusterNamed("untagged"); ok {
		t.Fatal("a stack without the vigil-protect tag became a cluster")
	}
	w.tick()
	if err := w.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	w.until(3*time.Minute, "both stack servers ACTIVE on another host", func() bool {
		for _, id := range []string{a, b} {
			if s := w.status(id); s.Status != model.StatusActive || s.Host == "host-1" {
				return false
			}
		}
		return true
	})
	w.refresh()
	if c, _ := w.clusterNamed("st1"); !slices.Equal(c.Members, []string{a, b}) || c.Health != model.Green {
		t.Fatalf("after the evacuation: members %v health %s (%s), want the same two IDs, Green", c.Members, c.Health, c.Reason)
	}

	// A stack update adds a server: it is protected from the next refresh on.
	third := w.ids[4]
	if err := w.cloud.SetStackServers("st1", a, b, third); err != nil {
		t.Fatal(err)
	}
	if w.protected(third) {
		t.Fatal("protected before any refresh read the stack")
	}
	w.refresh()
	if c, _ := w.clusterNamed("st1"); len(c.Members) != 3 || c.Desired != 3 || !w.protected(third) {
		t.Fatalf("after the stack update: members %v desired %d, want 3 with %s", c.Members, c.Desired, third)
	}
	if !w.saw("joined: [" + third + "]") {
		t.Fatalf("no event says %s joined\n%s", third, w.timeline())
	}
	// The update removes it again: a crash of it is no longer recovered.
	if err := w.cloud.SetStackServers("st1", a, b); err != nil {
		t.Fatal(err)
	}
	w.refresh()
	if w.protected(third) {
		t.Fatalf("%s left the stack but is still protected", third)
	}
	before := w.cloud.Calls()["reboot"]
	if err := w.cloud.Crash(third); err != nil {
		t.Fatal(err)
	}
	w.run(2 * time.Minute)
	if n := w.cloud.Calls()["reboot"]; n != before {
		t.Fatalf("a server removed from the stack was rebooted %d times", n-before)
	}
}

// A cluster created from a stack keeps its members across a restart of Vigil while
// Heat does not answer, and says why they may be stale.
func TestStackClusterKeepsItsMembersWhileHeatIsDown(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.cloud.CreateStack("app", nil, w.ids[0], w.ids[1])
	err := w.eng.CreateCluster(context.Background(), model.Cluster{Name: "app", Policy: "default",
		Source: &model.ClusterSource{Kind: model.SourceHeatStack, Ref: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	w.start() // a restart of Vigil
	w.tick()
	w.cloud.FailNext("stack-show", cloud.ErrUnavailable)
	w.refresh()
	c, _ := w.clusterNamed("app")
	if len(c.Members) != 2 || c.Source == nil || c.Source.Error == "" || !strings.Contains(c.Reason, "last resolution") {
		t.Fatalf("after a restart with Heat down: %+v source %+v, want the 2 stored members and the error", c, c.Source)
	}
	w.refresh()
	if c, _ := w.clusterNamed("app"); c.Source.Error != "" || c.Reason != "" {
		t.Fatalf("Heat answers again but the cluster still says %q / %q", c.Source.Error, c.Reason)
	}
	err = w.eng.CreateCluster(context.Background(), model.Cluster{Name: "nope", Policy: "default",
		Source: &model.ClusterSource{Kind: model.SourceHeatStack, Ref: "no-such-stack"}})
	var ie *engine.InvalidError
	if !errors.As(err, &ie) || ie.Field != "source.ref" {
		t.Fatalf("a cluster from a stack that does not exist: %v, want an error on source.ref", err)
	}
}

// Servers tagged with vigil:cluster metadata form a cluster; a server group is a
// source too; a server an explicit cluster holds stays there.
func TestMetadataAndServerGroupClusters(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.cluster("explicit", w.ids[5])
	for _, id := range []string{w.ids[0], w.ids[2], w.ids[5]} {
		if err := w.cloud.SetMetadata(id, model.MetaCluster, "web"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.cloud.SetMetadata(w.ids[0], model.MetaPolicy, "gold"); err != nil {
		t.Fatal(err)
	}
	w.run(11 * time.Second) // a full listing carries the metadata (Nova does not bump updated_at for it)
	w.refresh()
	c, ok := w.clusterNamed("web")
	if !ok || !slices.Equal(c.Members, []string{w.ids[0], w.ids[2]}) {
		t.Fatalf("metadata cluster web: %+v (found %v), want %s and %s (%s stays in cluster explicit)", c, ok, w.ids[0], w.ids[2], w.ids[5])
	}
	if !strings.Contains(c.Source.Note, "gold") || !strings.Contains(c.Source.Note, "explicit") || c.Policy != "default" {
		t.Fatalf("note %q policy %s: want the unknown policy gold and the member kept by cluster explicit said", c.Source.Note, c.Policy)
	}
	if err := w.eng.DeleteCluster(context.Background(), "web"); !errors.Is(err, engine.ErrFollowsSource) {
		t.Fatalf("deleting a discovered cluster: %v, want ErrFollowsSource", err)
	}
	if err := w.cloud.SetMetadata(w.ids[2], model.MetaCluster, ""); err != nil {
		t.Fatal(err)
	}
	w.run(11 * time.Second)
	w.refresh()
	if w.protected(w.ids[2]) {
		t.Fatalf("%s lost its vigil:cluster metadata but is still protected", w.ids[2])
	}

	w.cloud.CreateServerGroup("db-group", "anti-affinity", w.ids[1], w.ids[3])
	err := w.eng.CreateCluster(context.Background(), model.Cluster{Name: "db", Policy: "default",
		Source: &model.ClusterSource{Kind: model.SourceServerGroup, Ref: "db-group"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := w.clusterNamed("db"); !slices.Equal(c.Members, []string{w.ids[1], w.ids[3]}) || c.Desired != 2 {
		t.Fatalf("server group cluster: members %v desired %d", c.Members, c.Desired)
	}
}

// Members of an explicit cluster can be added and removed; each change is checked
// like a new cluster's, and survives a restart.
func TestEditCluster(t *testing.T) {
	w := newWorld(t, 2, 3)
	w.cluster("web", w.ids[0], w.ids[1])
	w.cluster("db", w.ids[2])
	ctx := context.Background()
	var ie *engine.InvalidError
	for _, tc := range []struct {
		add, remove []string
		field       string
	}{
		{add: []string{"no-such"}, field: "add[0]"},
		{add: []string{w.ids[3], w.ids[2]}, field: "add[1]"}, // in cluster db
		{add: []string{w.ids[0]}, field: "add[0]"},           // already a member
		{remove: []string{w.ids[3]}, field: "remove[0]"},     // not a member
		{remove: []string{w.ids[0], w.ids[1]}, field: "remove"},
		{field: "add"},
	} {
		if _, err := w.eng.EditCluster(ctx, "web", tc.add, tc.remove); !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("edit add %v remove %v: %v, want an error on %s", tc.add, tc.remove, err, tc.field)
		}
	}
	if _, err := w.eng.EditCluster(ctx, "nope", []string{w.ids[3]}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("edit of a missing cluster: %v", err)
	}
	c, err := w.eng.EditCluster(ctx, "web", []string{w.ids[3], w.ids[4]}, []string{w.ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{w.ids[1], w.ids[3], w.ids[4]}
	if !slices.Equal(c.Members, want) || c.Desired != 3 {
		t.Fatalf("after the edit: %v desired %d, want %v desired 3", c.Members, c.Desired, want)
	}
	w.start()
	if c, _ := w.clusterNamed("web"); !slices.Equal(c.Members, want) || !w.protected(w.ids[4]) || w.protected(w.ids[0]) {
		t.Fatalf("after a restart: %v, want %v", c.Members, want)
	}
	w.cloud.CreateStack("st", nil, w.ids[5])
	if err := w.eng.CreateCluster(ctx, model.Cluster{Name: "st", Policy: "default", Source: &model.ClusterSource{Kind: model.SourceHeatStack, Ref: "st"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.EditCluster(ctx, "st", []string{w.ids[0]}, nil); !errors.Is(err, engine.ErrFollowsSource) {
		t.Fatalf("edit of a stack's cluster: %v, want ErrFollowsSource", err)
	}
}

// A discovered cluster outlives a restart of Vigil during which Heat does not
// answer; it is gone once the stack loses its tag.
func TestDiscoveredClusterSurvivesARestartWhileHeatIsDown(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.cloud.CreateStack("st", []string{model.TagProtect}, w.ids[0], w.ids[1])
	w.refresh()
	w.start()
	w.tick()
	if !w.protected(w.ids[0]) || !w.protected(w.ids[1]) {
		t.Fatal("after a restart, before any refresh, the stack's servers are not protected")
	}
	w.cloud.FailNext("stack-list", cloud.ErrUnavailable)
	w.refresh()
	c, ok := w.clusterNamed("st")
	if !ok || len(c.Members) != 2 || c.Source.Error == "" {
		t.Fatalf("Heat down at the refresh: %+v %v, want the 2 members kept with the error said", c, ok)
	}
	if err := w.cloud.SetStackServers("st"); err != nil { // emptied
		t.Fatal(err)
	}
	w.refresh()
	if w.protected(w.ids[0]) {
		t.Fatal("the stack has no server left but its old members are protected")
	}
}
