package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-ha/vigil/model"
)

// A cluster's restart priority survives a restart of Vigil: after one, its servers
// must still go first when room is short.
func TestClusterPriorityIsKept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCluster(ctx, model.Cluster{Name: "gold", Members: []string{"a"}, Desired: 1, Policy: "default", Priority: 5}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs, err := db.Clusters(ctx)
	if err != nil || len(cs) != 1 || cs[0].Priority != 5 {
		t.Fatalf("clusters after reopen: %+v (%v), want gold with priority 5", cs, err)
	}
}
