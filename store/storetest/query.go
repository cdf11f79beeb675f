package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// testQueryIncidents: filters apply before the limit, pages continue after their
// marker, and a host's incidents include those whose steps acted on it.
func testQueryIncidents(t *testing.T, s store.Store) {
	l := take(t, s, model.DefaultShard, "r1")
	mk := func(kind, id, cluster string, closed bool) int64 {
		in := incident(kind, id, "")
		in.Cluster = cluster
		in = create(t, s, l.Epoch, in)
		if closed {
			in = closeAt(t, s, l.Epoch, in, T0.Add(time.Minute))
		}
		return in.ID
	}
	h1 := mk(model.KindHost, "h1", "", true)     // resolved
	a := mk(model.KindServer, "a", "web", false) // open, server on h2
	b := mk(model.KindServer, "b", "web", true)  // resolved, server on h1
	c := mk(model.KindServer, "c", "db", false)  // open; its evacuation step left h1
	d := mk(model.KindServer, "d", "db", false)  // open, unrelated
	st := model.Step{Incident: c, Seq: 1, Action: model.ActEvacuate, Server: "c", Host: "h1", State: model.StepIntent, Rule: "r", Planned: T0}
	must(t, s.AddStep(ctx, l.Epoch, &st))

	for _, q := range []struct {
		name string
		q    store.IncidentQuery
		want []int64
	}{
		{"all newest first", store.IncidentQuery{Limit: 10}, []int64{d, c, b, a, h1}},
		{"limit", store.IncidentQuery{Limit: 2}, []int64{d, c}},
		{"after a marker", store.IncidentQuery{Limit: 2, Before: c}, []int64{b, a}},
		{"last page", store.IncidentQuery{Limit: 2, Before: a}, []int64{h1}},
		{"state before the limit", store.IncidentQuery{Limit: 1, States: []model.IncidentState{model.IncidentResolved}}, []int64{b}},
		{"states", store.IncidentQuery{Limit: 10, States: []model.IncidentState{model.IncidentOpen, model.IncidentWaiting}}, []int64{d, c, a}},
		{"cluster", store.IncidentQuery{Limit: 10, Cluster: "web"}, []int64{b, a}},
		{"cluster and state", store.IncidentQuery{Limit: 10, Cluster: "db", States: []model.IncidentState{model.IncidentOpen}, Before: d}, []int64{c}},
		{"host: its own, its servers', its steps'", store.IncidentQuery{Limit: 10, Host: "h1", Servers: []string{"b"}}, []int64{c, b, h1}},
		{"host without servers", store.IncidentQuery{Limit: 10, Host: "h2"}, nil},
		{"host and cluster", store.IncidentQuery{Limit: 10, Host: "h1", Servers: []string{"b"}, Cluster: "db"}, []int64{c}},
	} {
		got, err := s.QueryIncidents(ctx, q.q)
		must(t, err)
		var ids []int64
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if !slices.Equal(ids, q.want) {
			t.Errorf("%s: %+v gave incidents %v, want %v", q.name, q.q, ids, q.want)
		}
		if q.name == "host: its own, its servers', its steps'" && len(got) > 0 && len(got[0].Steps) != 1 {
			t.Errorf("QueryIncidents lost incident %d's steps: %+v", got[0].ID, got[0].Steps)
		}
	}
}
