// Package storetest is the conformance suite every store.Store passes: the
// contract of store/store.go and store/lease.go, checked the same way on SQLite
// and on MariaDB/MySQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// T0 is the tests' clock: nanoseconds included, a store must keep them exactly.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 123, time.UTC)

// Run runs every contract test; open returns a fresh, empty store for one test
// (closed by the caller's cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range []struct {
		name string
		f    func(*testing.T, store.Store)
	}{
		{"Clusters", testClusters},
		{"JournalRoundTrip", testJournalRoundTrip},
		{"StaleEpochIsFencedOut", testStaleEpoch},
		{"NoLeaderNoWrite", testNoLeaderNoWrite},
		{"TakeoverClaimsOnlyItsShard", testTakeoverClaimsItsShard},
		{"LastClosedAndIncidents", testLastClosed},
		{"QueryIncidents", testQueryIncidents},
		{"FenceDoubts", testFenceDoubts},
		{"BMCIdentitiesFirstKept", testBMCIdentities},
		{"MaintenanceAndReturns", testMaintenance},
		{"EventsPaging", testEvents},
		{"LeaseTakeSeenForce", testLeaseTake},
		{"LeaseRace", testLeaseRace},
		{"LeaseRenewReleaseCheck", testLeaseRenew},
		{"EpochsUniqueIncreasing", testEpochs},
		{"Replicas", testReplicas},
		{"ShardCounts", testShardCounts},
		{"CompactByAge", testCompactByAge},
		{"CompactByCount", testCompactByCount},
		{"Size", testSize},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, open(t)) })
	}
}

var ctx = context.Background()

// take takes shard's lease as holder the way a standby does: at the version it
// sees now.
func take(t *testing.T, s store.Store, shard, holder string) store.Lease {
	t.Helper()
	l, err := s.TakeLease(ctx, store.LeaseRequest{Shard: shard, Holder: holder, Seen: version(t, s, shard), TTL: 10 * time.Second, Now: T0})
	if err != nil {
		t.Fatalf("take %s as %s: %v", shard, holder, err)
	}
	return l
}

func version(t *testing.T, s store.Store, shard string) int64 {
	t.Helper()
	ls, err := s.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Shard == shard {
			return l.Version
		}
	}
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stale(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("%s: %v, want ErrStale", what, err)
	}
}

func incident(kind string, id, shard string) model.Incident {
	return model.Incident{Subject: model.Subject{Kind: kind, ID: id}, State: model.IncidentOpen, Policy: "default",
		Rule: "r", Evidence: []string{"why"}, Opened: T0, Updated: T0, Shard: shard}
}

func create(t *testing.T, s store.Store, epoch int64, in model.Incident) model.Incident {
	t.Helper()
	must(t, s.CreateIncident(ctx, epoch, &in))
	return in
}

func closeAt(t *testing.T, s store.Store, epoch int64, in model.Incident, at time.Time) model.Incident {
	t.Helper()
	in.State, in.Reason, in.Closed, in.Updated = model.IncidentResolved, "done", at, at
	must(t, s.UpdateIncident(ctx, epoch, in))
	return in
}

func testClusters(t *testing.T, s store.Store) {
	c := model.Cluster{Name: "web", Members: []string{"a", "b"}, Desired: 2, Policy: "default", Priority: 5}
	must(t, s.CreateCluster(ctx, c))
	if err := s.CreateCluster(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate cluster: %v, want ErrExists", err)
	}
	src := &model.ClusterSource{Kind: model.SourceHeatStack, Ref: "ha"}
	must(t, s.CreateCluster(ctx, model.Cluster{Name: "db", Desired: 1, Policy: "p", Source: src}))
	cs, err := s.Clusters(ctx)
	if err != nil || len(cs) != 2 || cs[0].Name != "db" || cs[1].Name != "web" {
		t.Fatalf("clusters (by name): %+v, %v", cs, err)
	}
	if cs[1].Priority != 5 || !slices.Equal(cs[1].Members, c.Members) || cs[1].Source != nil {
		t.Fatalf("cluster web read back as %+v", cs[1])
	}
	if cs[0].Source == nil || cs[0].Source.Ref != "ha" {
		t.Fatalf("cluster db's source read back as %+v", cs[0].Source)
	}
	c.Members, c.Desired = []string{"a", "b", "c"}, 3
	must(t, s.UpdateCluster(ctx, c))
	if cs, _ := s.Clusters(ctx); len(cs[1].Members) != 3 || cs[1].Desired != 3 {
		t.Fatalf("after update: %+v", cs[1])
	}
	if err := s.UpdateCluster(ctx, model.Cluster{Name: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v, want ErrNotFound", err)
	}
	must(t, s.DeleteCluster(ctx, "web"))
	if err := s.DeleteCluster(ctx, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
}

// What is journaled reads back exactly: times to the nanosecond, every field.
func testJournalRoundTrip(t *testing.T, s store.Store) {
	l := take(t, s, model.DefaultShard, "r1")
	in := incident(model.KindHost, "h1", "")
	in.Fault, in.Cluster = model.FaultHung, "web"
	in = create(t, s, l.Epoch, in)
	if in.ID == 0 || in.Epoch != l.Epoch || in.Shard != model.DefaultShard {
		t.Fatalf("created incident %+v: want an ID, epoch %d, shard %q", in, l.Epoch, model.DefaultShard)
	}
	st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActEvacuate, Server: "a", Host: "h1", Target: "h2", Hard: true,
		State: model.StepIntent, Rule: "r", Planned: T0, Started: T0.Add(time.Second), Deadline: T0.Add(time.Hour),
		Timeout: time.Minute, Attempt: 2, Prior: 3}
	must(t, s.AddStep(ctx, l.Epoch, &st))
	if st.ID == 0 {
		t.Fatal("AddStep assigned no ID")
	}
	st.State, st.Error, st.Retryable, st.Issued, st.Finished = model.StepFailed, "boom", true, T0.Add(2*time.Second), T0.Add(3*time.Second)
	must(t, s.UpdateStep(ctx, l.Epoch, st))
	if err := s.UpdateStep(ctx, l.Epoch, model.Step{ID: st.ID + 100, Incident: in.ID}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of an unknown step: %v, want ErrNotFound", err)
	}
	got, err := s.Incident(ctx, in.ID)
	must(t, err)
	if got.Fault != model.FaultHung || got.Cluster != "web" || !got.Opened.Equal(T0) || len(got.Evidence) != 1 || len(got.Steps) != 1 {
		t.Fatalf("incident read back as %+v", got)
	}
	g := got.Steps[0]
	if g.State != model.StepFailed || g.Error != "boom" || !g.Retryable || !g.Hard || g.Target != "h2" || g.Prior != 3 || g.Attempt != 2 ||
		!g.Started.Equal(st.Started) || !g.Issued.Equal(st.Issued) || !g.Finished.Equal(st.Finished) || !g.Deadline.Equal(st.Deadline) ||
		g.Timeout != time.Minute {
		t.Fatalf("step read back as %+v, want %+v", g, st)
	}
	if _, err := s.Incident(ctx, in.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown incident: %v, want ErrNotFound", err)
	}
	if err := s.UpdateIncident(ctx, l.Epoch, model.Incident{ID: in.ID + 100}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of an unknown incident: %v, want ErrNotFound", err)
	}
}

// A write from a replaced owner fails and changes nothing; the new owner's works.
func testStaleEpoch(t *testing.T, s store.Store) {
	old := take(t, s, model.DefaultShard, "r1")
	in := create(t, s, old.Epoch, incident(model.KindServer, "a", ""))
	st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActReboot, Server: "a", State: model.StepIntent, Rule: "r"}
	must(t, s.AddStep(ctx, old.Epoch, &st))
	newer := take(t, s, model.DefaultShard, "r2")
	if newer.Epoch <= old.Epoch {
		t.Fatalf("takeover epoch %d after %d", newer.Epoch, old.Epoch)
	}
	st.State = model.StepIssued
	stale(t, "update step", s.UpdateStep(ctx, old.Epoch, st))
	stale(t, "add step", s.AddStep(ctx, old.Epoch, &model.Step{Incident: in.ID, Seq: 2, Action: model.ActRebuild, Rule: "r"}))
	stale(t, "update incident", s.UpdateIncident(ctx, old.Epoch, model.Incident{ID: in.ID, State: model.IncidentResolved}))
	b := incident(model.KindServer, "b", "")
	stale(t, "create incident", s.CreateIncident(ctx, old.Epoch, &b))
	incs, err := s.OpenIncidents(ctx)
	must(t, err)
	if len(incs) != 1 || incs[0].State != model.IncidentOpen || len(incs[0].Steps) != 1 || incs[0].Steps[0].State != model.StepIntent {
		t.Fatalf("stale writes changed the journal: %+v", incs)
	}
	if incs[0].Epoch != newer.Epoch {
		t.Fatalf("open incident's epoch %d after the takeover, want %d", incs[0].Epoch, newer.Epoch)
	}
	must(t, s.UpdateStep(ctx, newer.Epoch, st))
}

// No incident is created on a shard nobody leads, or led under another epoch.
func testNoLeaderNoWrite(t *testing.T, s store.Store) {
	in := incident(model.KindHost, "h1", "")
	stale(t, "create with no lease at all", s.CreateIncident(ctx, 1, &in))
	l := take(t, s, "east", "r1")
	in.Shard = "west"
	stale(t, "create on a shard not led", s.CreateIncident(ctx, l.Epoch, &in))
	in.Shard = "east"
	must(t, s.CreateIncident(ctx, l.Epoch, &in))
	must(t, s.ReleaseLease(ctx, "east", "r1", l.Epoch))
	in2 := incident(model.KindHost, "h2", "east")
	stale(t, "create on a released shard", s.CreateIncident(ctx, l.Epoch, &in2))
}

func testTakeoverClaimsItsShard(t *testing.T, s store.Store) {
	e := take(t, s, "east", "r1")
	w := take(t, s, "west", "r1")
	ie := create(t, s, e.Epoch, incident(model.KindHost, "h1", "east"))
	iw := create(t, s, w.Epoch, incident(model.KindHost, "h2", "west"))
	closed := closeAt(t, s, e.Epoch, create(t, s, e.Epoch, incident(model.KindHost, "h3", "east")), T0.Add(time.Minute))
	e2 := take(t, s, "east", "r2")
	for _, c := range []struct {
		id   int64
		want int64
	}{{ie.ID, e2.Epoch}, {iw.ID, w.Epoch}, {closed.ID, e.Epoch}} {
		got, err := s.Incident(ctx, c.id)
		must(t, err)
		if got.Epoch != c.want {
			t.Errorf("incident %d (%s, closed %v) at epoch %d after east's takeover, want %d", got.ID, got.Shard, !got.Closed.IsZero(), got.Epoch, c.want)
		}
	}
	must(t, s.UpdateIncident(ctx, w.Epoch, iw)) // west's leader is not disturbed
}

func testLastClosed(t *testing.T, s store.Store) {
	l := take(t, s, model.DefaultShard, "r1")
	a := model.Subject{Kind: model.KindServer, ID: "a"}
	for i, state := range []model.IncidentState{model.IncidentResolved, model.IncidentEscalated} {
		in := create(t, s, l.Epoch, incident(model.KindServer, "a", ""))
		in.State, in.Reason, in.Closed = state, string(state), T0.Add(time.Duration(i+1)*time.Minute)
		must(t, s.UpdateIncident(ctx, l.Epoch, in))
	}
	open := create(t, s, l.Epoch, incident(model.KindServer, "a", ""))
	create(t, s, l.Epoch, incident(model.KindServer, "b", ""))
	last, err := s.LastClosed(ctx)
	must(t, err)
	if len(last) != 1 || last[a].State != model.IncidentEscalated || !last[a].Closed.Equal(T0.Add(2*time.Minute)) {
		t.Fatalf("last closed: %+v, want a's escalated one only", last)
	}
	opens, err := s.OpenIncidents(ctx)
	must(t, err)
	if len(opens) != 2 || opens[0].ID != open.ID {
		t.Fatalf("open incidents: %+v, want 2 by ID", opens)
	}
	all, err := s.Incidents(ctx, 3)
	must(t, err)
	if len(all) != 3 || all[0].ID < all[1].ID || all[1].ID < all[2].ID {
		t.Fatalf("Incidents(3): %d, want the 3 newest first", len(all))
	}
}

func testFenceDoubts(t *testing.T, s store.Store) {
	must(t, s.RecordFenceDoubt(ctx, "h1", "says off while reporting", T0))
	must(t, s.RecordFenceDoubt(ctx, "h1", "another reason", T0.Add(time.Minute)))
	must(t, s.RecordBMCIdentities(ctx, map[string]string{"h1": "guid-1", "h2": "guid-2"}, T0))
	got, err := s.FenceDoubts(ctx)
	if err != nil || len(got) != 1 || got["h1"] != "says off while reporting" {
		t.Fatalf("doubts: %v, %v; want the first reason kept", got, err)
	}
	must(t, s.ClearFenceDoubt(ctx, "h1"))
	if err := s.ClearFenceDoubt(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("clearing twice: %v, want ErrNotFound", err)
	}
	if got, _ := s.FenceDoubts(ctx); len(got) != 0 {
		t.Fatalf("doubts after clearing: %v", got)
	}
	if ids, _ := s.BMCIdentities(ctx); len(ids) != 1 || ids["h2"] != "guid-2" {
		t.Fatalf("identities after clearing h1's doubt: %v, want only h2's", ids)
	}
}

func testBMCIdentities(t *testing.T, s store.Store) {
	for _, ids := range []map[string]string{{"h1": "guid-1", "h2": "guid-2"}, {"h1": "guid-3", "h3": "guid-4"}} {
		must(t, s.RecordBMCIdentities(ctx, ids, T0))
	}
	must(t, s.RecordBMCIdentities(ctx, nil, T0))
	got, err := s.BMCIdentities(ctx)
	if err != nil || len(got) != 3 || got["h1"] != "guid-1" || got["h3"] != "guid-4" {
		t.Fatalf("identities: %v, %v; want each host's first", got, err)
	}
}

func testMaintenance(t *testing.T, s store.Store) {
	must(t, s.SetHostMaintenance(ctx, model.Maintenance{Host: "h1", Reason: "firmware", Since: T0}))
	must(t, s.SetHostMaintenance(ctx, model.Maintenance{Host: "h1", Reason: "disk", Since: T0.Add(time.Minute)}))
	m, err := s.HostMaintenance(ctx)
	if err != nil || len(m) != 1 || m["h1"].Reason != "disk" || !m["h1"].Since.Equal(T0.Add(time.Minute)) {
		t.Fatalf("maintenance: %+v, %v; want the last record", m, err)
	}
	must(t, s.ClearHostMaintenance(ctx, "h1"))
	if err := s.ClearHostMaintenance(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ending a maintenance twice: %v, want ErrNotFound", err)
	}
	must(t, s.RecordHostReturn(ctx, "h2", T0))
	must(t, s.RecordHostReturn(ctx, "h2", T0.Add(time.Hour)))
	if r, err := s.HostReturns(ctx); err != nil || len(r) != 1 || !r["h2"].Equal(T0.Add(time.Hour)) {
		t.Fatalf("host returns: %v, %v; want the last", r, err)
	}
}

func testEvents(t *testing.T, s store.Store) {
	must(t, s.AppendEvents(ctx))
	var evs []model.Event
	for i := range 25 {
		evs = append(evs, model.Event{At: T0.Add(time.Duration(i) * time.Second), Kind: "k", Subject: "host/h1", Incident: int64(i % 3), Message: fmt.Sprint("m", i)})
	}
	must(t, s.AppendEvents(ctx, evs...))
	var got []model.Event
	after := int64(0)
	for {
		page, err := s.Events(ctx, after, 10)
		must(t, err)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != 25 {
		t.Fatalf("paged %d events, want 25", len(got))
	}
	for i, e := range got {
		if e.Message != fmt.Sprint("m", i) || !e.At.Equal(evs[i].At) || e.Incident != int64(i%3) || (i > 0 && e.ID <= got[i-1].ID) {
			t.Fatalf("event %d read back as %+v", i, e)
		}
	}
}

func testLeaseTake(t *testing.T, s store.Store) {
	if _, err := s.TakeLease(ctx, store.LeaseRequest{Shard: "a", Holder: "r1", Seen: 5, TTL: time.Second, Now: T0}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("take a new shard at a version it never had: %v, want ErrStale", err)
	}
	l := take(t, s, "a", "r1")
	if l.Holder != "r1" || l.Epoch == 0 || l.Version == 0 || l.TTL != 10*time.Second || !l.Since.Equal(T0) {
		t.Fatalf("taken lease %+v", l)
	}
	_, err := s.TakeLease(ctx, store.LeaseRequest{Shard: "a", Holder: "r2", Seen: l.Version - 1, TTL: time.Second, Now: T0})
	stale(t, "take at an old version", err)
	if _, err := s.RenewLease(ctx, "a", "r1", l.Epoch, T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = s.TakeLease(ctx, store.LeaseRequest{Shard: "a", Holder: "r2", Seen: l.Version, TTL: time.Second, Now: T0})
	stale(t, "take at the version before a renewal", err)
	f, err := s.TakeLease(ctx, store.LeaseRequest{Shard: "a", Holder: "r3", Force: true, TTL: time.Second, Now: T0})
	if err != nil || f.Holder != "r3" || f.Epoch <= l.Epoch {
		t.Fatalf("forced take: %+v, %v", f, err)
	}
	ls, err := s.Leases(ctx)
	must(t, err)
	if len(ls) != 1 || ls[0].Holder != "r3" || ls[0].Epoch != f.Epoch || ls[0].Version != f.Version {
		t.Fatalf("leases: %+v, want r3's %+v", ls, f)
	}
}

// Standbys that saw the same expiry race for the lease: exactly one wins.
func testLeaseRace(t *testing.T, s store.Store) {
	for round := range 5 {
		shard := fmt.Sprint("race-", round)
		seen := int64(0)
		if round%2 == 1 { // a lease held before, as a standby sees it
			seen = take(t, s, shard, "old").Version
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = s.TakeLease(ctx, store.LeaseRequest{Shard: shard, Holder: fmt.Sprint("r", i), Seen: seen, TTL: time.Second, Now: T0})
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrStale):
				t.Errorf("round %d, taker %d: %v, want nil or ErrStale", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d takers won, want exactly 1 (%v)", round, won, errs)
		}
	}
}

func testLeaseRenew(t *testing.T, s store.Store) {
	l := take(t, s, "a", "r1")
	r, err := s.RenewLease(ctx, "a", "r1", l.Epoch, T0.Add(time.Second))
	if err != nil || r.Version <= l.Version || r.Epoch != l.Epoch || !r.Renewed.Equal(T0.Add(time.Second)) {
		t.Fatalf("renewal: %+v, %v", r, err)
	}
	must(t, s.CheckLease(ctx, l.Epoch))
	t2 := take(t, s, "a", "r2")
	_, err = s.RenewLease(ctx, "a", "r1", l.Epoch, T0.Add(2*time.Second))
	stale(t, "renew after a takeover", err)
	stale(t, "check after a takeover", s.CheckLease(ctx, l.Epoch))
	stale(t, "release after a takeover", s.ReleaseLease(ctx, "a", "r1", l.Epoch))
	must(t, s.CheckLease(ctx, t2.Epoch))
	must(t, s.ReleaseLease(ctx, "a", "r2", t2.Epoch))
	stale(t, "check after release", s.CheckLease(ctx, t2.Epoch))
	stale(t, "renew after release", func() error { _, err := s.RenewLease(ctx, "a", "r2", t2.Epoch, T0); return err }())
	v := version(t, s, "a")
	if v <= t2.Version {
		t.Fatalf("release did not change the version (%d, was %d): a standby would wait a TTL for nothing", v, t2.Version)
	}
	t3 := take(t, s, "a", "r3") // at once, at the released version
	if t3.Epoch <= t2.Epoch {
		t.Fatalf("epoch after release %d, want > %d", t3.Epoch, t2.Epoch)
	}
	stale(t, "check of an epoch never given", s.CheckLease(ctx, t3.Epoch+1000))
}

func testEpochs(t *testing.T, s store.Store) {
	seen := map[int64]bool{}
	last := int64(0)
	for i := range 9 {
		l := take(t, s, fmt.Sprint("s", i%3), fmt.Sprint("r", i))
		if seen[l.Epoch] || l.Epoch <= last {
			t.Fatalf("take %d gave epoch %d after %d (seen: %v)", i, l.Epoch, last, seen)
		}
		seen[l.Epoch], last = true, l.Epoch
	}
}

func testReplicas(t *testing.T, s store.Store) {
	must(t, s.Heartbeat(ctx, store.Replica{ID: "r1", Addr: "a:1", Host: "h", PID: 7, Seen: T0, Started: T0}))
	must(t, s.Heartbeat(ctx, store.Replica{ID: "r2", Seen: T0}))
	rs, err := s.Replicas(ctx)
	must(t, err)
	if len(rs) != 2 || rs[0].ID != "r1" || rs[0].Addr != "a:1" || rs[0].PID != 7 || !rs[0].Started.Equal(T0) || rs[1].PID == 0 || rs[1].Host == "" {
		t.Fatalf("replicas: %+v (a zero PID or host is this process's)", rs)
	}
	v := rs[0].Version
	must(t, s.Heartbeat(ctx, store.Replica{ID: "r1", Addr: "a:2", Host: "h", PID: 7, Seen: T0.Add(time.Second), Started: T0}))
	rs, _ = s.Replicas(ctx)
	if rs[0].Version <= v || rs[0].Addr != "a:2" || !rs[0].Seen.Equal(T0.Add(time.Second)) {
		t.Fatalf("after a heartbeat: %+v, version was %d", rs[0], v)
	}
	must(t, s.RemoveReplica(ctx, "r1"))
	if rs, _ := s.Replicas(ctx); len(rs) != 1 || rs[0].ID != "r2" {
		t.Fatalf("after removing r1: %+v", rs)
	}
}

func testShardCounts(t *testing.T, s store.Store) {
	l := take(t, s, "east", "r1")
	must(t, s.PublishShard(ctx, store.ShardCount{Shard: "east", Epoch: l.Epoch, Hosts: 10, Failed: 1, At: T0}))
	must(t, s.PublishShard(ctx, store.ShardCount{Shard: "east", Epoch: l.Epoch, Hosts: 12, Failed: 2, At: T0.Add(time.Second)}))
	stale(t, "publish a shard not led", s.PublishShard(ctx, store.ShardCount{Shard: "west", Epoch: l.Epoch, Hosts: 1}))
	l2 := take(t, s, "east", "r2")
	stale(t, "publish after a takeover", s.PublishShard(ctx, store.ShardCount{Shard: "east", Epoch: l.Epoch, Hosts: 99}))
	cs, err := s.ShardCounts(ctx)
	must(t, err)
	if len(cs) != 1 || cs[0].Hosts != 12 || cs[0].Failed != 2 || cs[0].Epoch != l.Epoch || !cs[0].At.Equal(T0.Add(time.Second)) {
		t.Fatalf("shard counts: %+v", cs)
	}
	must(t, s.PublishShard(ctx, store.ShardCount{Shard: "east", Epoch: l2.Epoch, Hosts: 13, At: T0}))
}

// history builds, per subject s0..s4, three incidents closed a day apart (the last
// at T0) and one open incident for s0, each incident with a step and an event,
// and 10 events of no incident an hour apart ending at T0.
func history(t *testing.T, s store.Store) (open model.Incident, lastClosed map[string]int64) {
	t.Helper()
	l := take(t, s, model.DefaultShard, "r1")
	lastClosed = map[string]int64{}
	add := func(in model.Incident) model.Incident {
		in = create(t, s, l.Epoch, in)
		st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActReboot, Server: in.Subject.ID, State: model.StepIntent, Rule: "r", Planned: in.Opened}
		must(t, s.AddStep(ctx, l.Epoch, &st))
		must(t, s.AppendEvents(ctx, model.Event{At: in.Opened, Kind: "incident", Subject: in.Subject.String(), Incident: in.ID, Message: "opened"}))
		return in
	}
	for d := 2; d >= 0; d-- {
		for i := range 5 {
			in := incident(model.KindServer, fmt.Sprint("s", i), "")
			in.Opened = T0.Add(-time.Duration(d)*24*time.Hour - time.Hour)
			in = add(in)
			in = closeAt(t, s, l.Epoch, in, T0.Add(-time.Duration(d)*24*time.Hour+time.Duration(i)*time.Second))
			lastClosed[in.Subject.ID] = in.ID
		}
	}
	o := incident(model.KindServer, "s0", "")
	o.Opened = T0.Add(-30 * 24 * time.Hour) // open for a month: its history is kept whatever its age
	open = add(o)
	for i := range 10 {
		must(t, s.AppendEvents(ctx, model.Event{At: T0.Add(-time.Duration(9-i) * time.Hour), Kind: "verdict", Subject: "host/h1", Message: fmt.Sprint("v", i)}))
	}
	return open, lastClosed
}

// kept checks what a compaction must never remove: the open incident with its
// step and event, and each subject's last closed incident.
func kept(t *testing.T, s store.Store, open model.Incident, lastClosed map[string]int64) {
	t.Helper()
	got, err := s.Incident(ctx, open.ID)
	if err != nil || len(got.Steps) != 1 {
		t.Fatalf("the open incident after compaction: %+v, %v", got, err)
	}
	evs, err := s.Events(ctx, 0, 1000)
	must(t, err)
	if !slices.ContainsFunc(evs, func(e model.Event) bool { return e.Incident == open.ID }) {
		t.Fatal("compaction removed the open incident's event")
	}
	last, err := s.LastClosed(ctx)
	must(t, err)
	for subj, id := range lastClosed {
		if last[model.Subject{Kind: model.KindServer, ID: subj}].ID != id {
			t.Fatalf("%s's last closed incident after compaction: %+v, want %d", subj, last[model.Subject{Kind: model.KindServer, ID: subj}], id)
		}
		if in, err := s.Incident(ctx, id); err != nil || len(in.Steps) != 1 {
			t.Fatalf("%s's last closed incident %d after compaction: %+v, %v", subj, id, in, err)
		}
	}
}

func testCompactByAge(t *testing.T, s store.Store) {
	open, last := history(t, s)
	before, err := s.Size(ctx)
	must(t, err)
	if c, err := s.Compact(ctx, store.Retention{}, T0); err != nil || c != (store.Compacted{}) {
		t.Fatalf("compaction with no retention: %+v, %v; want nothing removed", c, err)
	}
	c, err := s.Compact(ctx, store.Retention{ClosedMaxAge: 12 * time.Hour, EventsMaxAge: 5*time.Hour + time.Minute}, T0)
	must(t, err)
	// 10 closed incidents older than 12 h, none a subject's last; their steps and
	// events; and 4 events of no incident older than 5 h.
	if c.Incidents != 10 || c.Steps != 10 || c.Events != 10+4 {
		t.Fatalf("compacted %+v, want 10 incidents, 10 steps, 14 events", c)
	}
	kept(t, s, open, last)
	after, err := s.Size(ctx)
	must(t, err)
	if after.Incidents != before.Incidents-10 || after.Events != before.Events-14 || after.OpenIncidents != 1 {
		t.Fatalf("size %+v after, %+v before", after, before)
	}
	if again, err := s.Compact(ctx, store.Retention{ClosedMaxAge: 12 * time.Hour, EventsMaxAge: 5*time.Hour + time.Minute}, T0); err != nil || again != (store.Compacted{}) {
		t.Fatalf("a second compaction: %+v, %v; want nothing more", again, err)
	}
}

func testCompactByCount(t *testing.T, s store.Store) {
	open, last := history(t, s)
	c, err := s.Compact(ctx, store.Retention{ClosedMax: 7, EventsMax: 3}, T0)
	must(t, err)
	// Of 15 closed incidents the 7 newest stay (5 are the subjects' last): 8 go.
	if c.Incidents != 8 || c.Steps != 8 {
		t.Fatalf("compacted %+v, want 8 incidents and their 8 steps", c)
	}
	kept(t, s, open, last)
	evs, err := s.Events(ctx, 0, 1000)
	must(t, err)
	var free int
	for _, e := range evs {
		if e.Incident == 0 {
			free++
		}
	}
	// Beyond the 3 newest events, only those of the open incident stay.
	if len(evs) != 3+1 || free != 3 {
		t.Fatalf("%d events left (%d of no incident): %+v; want the 3 newest and the open incident's", len(evs), free, evs)
	}
}

func testSize(t *testing.T, s store.Store) {
	l := take(t, s, model.DefaultShard, "r1")
	in := create(t, s, l.Epoch, incident(model.KindHost, "h1", ""))
	closeAt(t, s, l.Epoch, create(t, s, l.Epoch, incident(model.KindHost, "h2", "")), T0)
	st := model.Step{Incident: in.ID, Seq: 1, Action: model.ActFence, Host: "h1", State: model.StepIntent, Rule: "r"}
	must(t, s.AddStep(ctx, l.Epoch, &st))
	must(t, s.AppendEvents(ctx, model.Event{At: T0, Kind: "k", Message: "m"}, model.Event{At: T0, Kind: "k", Message: "n"}))
	z, err := s.Size(ctx)
	must(t, err)
	if z.Incidents != 2 || z.OpenIncidents != 1 || z.Steps != 1 || z.Events != 2 || z.Bytes <= 0 {
		t.Fatalf("size %+v, want 2 incidents (1 open), 1 step, 2 events, some bytes", z)
	}
}

// MeasureCompact fills s with n events (a tenth of them of closed incidents, one
// incident per 100 events, alternating between 1000 subjects), then compacts it
// to a tenth of its events by count and reports time and size before and after:
// a measurement, not a test (run by the stores' TestMeasureCompact when asked).
func MeasureCompact(t *testing.T, s store.Store, n int) {
	l := take(t, s, model.DefaultShard, "r1")
	start := time.Now()
	const batch = 5000
	evs := make([]model.Event, 0, batch)
	var inc int64
	for i := range n {
		if i%100 == 0 {
			in := create(t, s, l.Epoch, incident(model.KindServer, fmt.Sprint("s", i/100%1000), ""))
			closeAt(t, s, l.Epoch, in, T0.Add(time.Duration(i)*time.Millisecond))
			inc = in.ID
		}
		e := model.Event{At: T0.Add(time.Duration(i) * time.Millisecond), Kind: "verdict", Subject: "host/h1", Message: "host h1 answers its BMC and Nova: up"}
		if i%10 == 0 {
			e.Incident = inc
		}
		evs = append(evs, e)
		if len(evs) == batch || i == n-1 {
			must(t, s.AppendEvents(ctx, evs...))
			evs = evs[:0]
		}
	}
	fill := time.Since(start)
	before, err := s.Size(ctx)
	must(t, err)
	start = time.Now()
	c, err := s.Compact(ctx, store.Retention{EventsMax: n / 10, ClosedMax: n / 1000}, T0.Add(time.Duration(n)*time.Millisecond))
	must(t, err)
	took := time.Since(start)
	after, err := s.Size(ctx)
	must(t, err)
	t.Logf("filled %d events, %d incidents in %s; compaction (keep %d events, %d closed incidents) took %s, removed %+v", n, before.Incidents, fill.Round(time.Millisecond), n/10, n/1000, took.Round(time.Millisecond), c)
	t.Logf("size before: %d bytes %+v", before.Bytes, before)
	t.Logf("size after:  %d bytes %+v", after.Bytes, after)
}
