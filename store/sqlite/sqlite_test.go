package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 123, time.UTC)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// What is journaled survives closing and reopening the file, with its exact times.
func TestJournalSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	db := open(t, path)
	epoch, err := claim(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCluster(ctx, model.Cluster{Name: "web", Members: []string{"a", "b"}, Desired: 2, Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	in := model.Incident{Subject: model.Subject{Kind: model.KindHost, ID: "h1"}, State: model.IncidentOpen, Policy: "default",
		Rule: "host-down", Evidence: []string{"service down"}, Opened: t0, Updated: t0, Fault: model.FaultHung}
	if err := db.CreateIncident(ctx, epoch, &in); err != nil {
		t.Fatal(err)
	}
	st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActEvacuate, Server: "a", Host: "h1", Target: "h2", State: model.StepIntent,
		Rule: "r", Planned: t0, Started: t0.Add(time.Second), Timeout: time.Minute, Attempt: 1}
	if err := db.AddStep(ctx, epoch, &st); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = open(t, path)
	incs, err := db.OpenIncidents(ctx)
	if err != nil || len(incs) != 1 || len(incs[0].Steps) != 1 {
		t.Fatalf("after reopen: %+v, %v", incs, err)
	}
	if incs[0].Fault != model.FaultHung {
		t.Fatalf("fault after reopen %q, want %q: a restarted Vigil would climb another ladder", incs[0].Fault, model.FaultHung)
	}
	got := incs[0].Steps[0]
	if got.State != model.StepIntent || got.Target != "h2" || !got.Started.Equal(t0.Add(time.Second)) || got.Timeout != time.Minute {
		t.Fatalf("step after reopen: %+v", got)
	}
	if cs, _ := db.Clusters(ctx); len(cs) != 1 || len(cs[0].Members) != 2 {
		t.Fatalf("clusters after reopen: %+v", cs)
	}
}

// A write from a replaced owner fails and changes nothing.
func TestStaleOwnerIsFencedOut(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	old, _ := claim(ctx, db)
	in := model.Incident{Subject: model.Subject{Kind: model.KindServer, ID: "a"}, State: model.IncidentOpen, Opened: t0}
	if err := db.CreateIncident(ctx, old, &in); err != nil {
		t.Fatal(err)
	}
	st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActReboot, Server: "a", State: model.StepIntent, Rule: "r"}
	if err := db.AddStep(ctx, old, &st); err != nil {
		t.Fatal(err)
	}
	newer, _ := claim(ctx, db)
	if newer <= old {
		t.Fatalf("claim gave epoch %d after %d", newer, old)
	}
	st.State = model.StepIssued
	for name, err := range map[string]error{
		"update step":     db.UpdateStep(ctx, old, st),
		"add step":        db.AddStep(ctx, old, &model.Step{Incident: in.ID, Seq: 2, Action: model.ActRebuild, Rule: "r"}),
		"update incident": db.UpdateIncident(ctx, old, model.Incident{ID: in.ID, State: model.IncidentResolved}),
		"create incident": db.CreateIncident(ctx, old, &model.Incident{Subject: model.Subject{Kind: model.KindServer, ID: "b"}}),
	} {
		if !errors.Is(err, store.ErrStale) {
			t.Errorf("%s from the old owner: %v, want ErrStale", name, err)
		}
	}
	incs, _ := db.OpenIncidents(ctx)
	if len(incs) != 1 || incs[0].State != model.IncidentOpen || len(incs[0].Steps) != 1 || incs[0].Steps[0].State != model.StepIntent {
		t.Fatalf("stale writes changed the journal: %+v", incs)
	}
	if err := db.UpdateStep(ctx, newer, st); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
}

func TestClustersAndLastClosed(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	c := model.Cluster{Name: "web", Members: []string{"a"}, Desired: 1, Policy: "default"}
	if err := db.CreateCluster(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCluster(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := db.DeleteCluster(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	epoch, _ := claim(ctx, db)
	subj := model.Subject{Kind: model.KindServer, ID: "a"}
	for i, state := range []model.IncidentState{model.IncidentResolved, model.IncidentEscalated} {
		in := model.Incident{Subject: subj, State: model.IncidentOpen, Opened: t0}
		if err := db.CreateIncident(ctx, epoch, &in); err != nil {
			t.Fatal(err)
		}
		in.State, in.Reason, in.Closed = state, string(state), t0.Add(time.Duration(i+1)*time.Minute)
		if err := db.UpdateIncident(ctx, epoch, in); err != nil {
			t.Fatal(err)
		}
	}
	last, err := db.LastClosed(ctx)
	if err != nil || last[subj].State != model.IncidentEscalated {
		t.Fatalf("last closed: %+v, %v", last, err)
	}
	if _, err := db.Incident(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
}

// A fence doubt outlives a reopen (a BMC that lied before a restart is not trusted
// after it) until it is cleared; the first reason is kept.
func TestFenceDoubtsPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.RecordFenceDoubt(ctx, "h1", "says off while reporting", at); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordFenceDoubt(ctx, "h1", "another reason", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.FenceDoubts(ctx)
	if err != nil || len(got) != 1 || got["h1"] != "says off while reporting" {
		t.Fatalf("doubts after a reopen: %v, %v", got, err)
	}
	if err := db.ClearFenceDoubt(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := db.ClearFenceDoubt(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("clearing twice: %v, want ErrNotFound", err)
	}
	if got, _ := db.FenceDoubts(ctx); len(got) != 0 {
		t.Fatalf("doubts after clearing: %v", got)
	}
}

// A BMC's first identity outlives a reopen (an entry rewired while Vigil was down
// is compared with it) until the host's fence doubt is cleared; the first is kept.
func TestBMCIdentitiesPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, ids := range []map[string]string{{"h1": "guid-1", "h2": "guid-2"}, {"h1": "guid-3"}} {
		if err := db.RecordBMCIdentities(ctx, ids, at); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.BMCIdentities(ctx)
	if err != nil || len(got) != 2 || got["h1"] != "guid-1" || got["h2"] != "guid-2" {
		t.Fatalf("identities after a reopen: %v, %v", got, err)
	}
	if err := db.RecordFenceDoubt(ctx, "h1", "now identifies as guid-3", at); err != nil {
		t.Fatal(err)
	}
	if err := db.ClearFenceDoubt(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.BMCIdentities(ctx); len(got) != 1 || got["h2"] != "guid-2" {
		t.Fatalf("identities after clearing h1's doubt: %v, want only h2's", got)
	}
}

// claim takes the default shard's lease by force (this process opened the file, so
// no other can hold it) and returns its epoch: the open incidents are claimed for it.
func claim(ctx context.Context, db *DB) (int64, error) {
	l, err := db.TakeLease(ctx, store.LeaseRequest{Shard: model.DefaultShard, Holder: "test", Force: true, TTL: time.Second, Now: time.Now()})
	return l.Epoch, err
}
