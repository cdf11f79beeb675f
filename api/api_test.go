package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

type rig struct {
	t     *testing.T
	now   time.Time
	cloud *sim.Cloud
	eng   *engine.Engine
	db    *sqlite.DB
	srv   *httptest.Server
	ids   []string
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return r.now }
	r.cloud = sim.New(sim.DefaultConfig(), clock)
	for h := 1; h <= 3; h++ {
		r.cloud.AddHost(fmt.Sprintf("host-%d", h), "a", 10)
		for i := range 2 {
			id, _ := r.cloud.CreateServer(fmt.Sprintf("vm-%d-%d", h, i), fmt.Sprintf("host-%d", h))
			r.ids = append(r.ids, id)
		}
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	r.eng, err = engine.New(context.Background(), engine.Config{Compute: r.cloud, Fencer: r.cloud, Store: db, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.srv = httptest.NewServer(validated(t, api.Handler(r.eng, db, slog.New(slog.NewTextHandler(io.Discard, nil)), allOptions()...)))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) tick() {
	r.now = r.now.Add(time.Second)
	if err := r.eng.Tick(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) call(method, path, body string) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (r *rig) get(path string, out any) {
	r.t.Helper()
	code, data := r.call(http.MethodGet, path, "")
	if code != http.StatusOK {
		r.t.Fatalf("GET %s: %d %s", path, code, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
}

func (r *rig) health(name string) model.ClusterHealth {
	var c model.ClusterStatus
	r.get("/v1/clusters/"+name, &c)
	return c.Health
}

func TestCreateClusterRejectsBadInputNamingTheField(t *testing.T) {
	r := newRig(t)
	ok := fmt.Sprintf(`{"name":"web","members":[%q,%q],"desired":2}`, r.ids[0], r.ids[1])
	if code, body := r.call(http.MethodPost, "/v1/clusters", ok); code != http.StatusCreated {
		t.Fatalf("valid cluster: %d %s", code, body)
	}
	before, _ := r.db.Clusters(context.Background())
	cases := []struct{ name, body, field, msg string }{
		{"unknown server", fmt.Sprintf(`{"name":"db","members":[%q,"no-such-server"]}`, r.ids[2]), "members[1]", "unknown server"},
		{"negative count", fmt.Sprintf(`{"name":"db","members":[%q],"desired":-1}`, r.ids[2]), "desired", "negative"},
		{"count above members", fmt.Sprintf(`{"name":"db","members":[%q],"desired":3}`, r.ids[2]), "desired", "only 1 members"},
		{"unknown policy", fmt.Sprintf(`{"name":"db","members":[%q],"policy":"yolo"}`, r.ids[2]), "policy", `unknown policy "yolo"`},
		{"no name", fmt.Sprintf(`{"members":[%q]}`, r.ids[2]), "name", "required"},
		{"no members", `{"name":"db","members":[]}`, "members", "at least one"},
		{"server in two clusters", fmt.Sprintf(`{"name":"db","members":[%q]}`, r.ids[0]), "members[0]", "already belongs"},
		{"wrong type", `{"name":"db","members":"x"}`, "members", "must be []string"},
		{"unknown field", fmt.Sprintf(`{"name":"db","members":[%q],"replicas":2}`, r.ids[2]), "replicas", "unknown field"},
		{"priority out of range", fmt.Sprintf(`{"name":"db","members":[%q],"priority":9}`, r.ids[2]), "priority", "1 to 5"},
		{"malformed JSON", `{"name":"db",`, "body", "malformed"},
		{"empty body", ``, "body", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := r.call(http.MethodPost, "/v1/clusters", c.body)
			var e api.Error
			_ = json.Unmarshal(body, &e)
			if code != http.StatusBadRequest || e.Field != c.field || !strings.Contains(e.Error, c.msg) {
				t.Fatalf("got %d %s, want 400 naming field %q with %q", code, body, c.field, c.msg)
			}
		})
	}
	after, _ := r.db.Clusters(context.Background())
	if len(after) != len(before) || after[0].Name != "web" {
		t.Fatalf("store changed by rejected requests: %+v", after)
	}
	if code, _ := r.call(http.MethodPost, "/v1/clusters", ok); code != http.StatusConflict {
		t.Fatalf("duplicate cluster: %d, want 409", code)
	}
	if code, _ := r.call(http.MethodGet, "/v1/incidents?limit=abc", ""); code != http.StatusBadRequest {
		t.Fatalf("bad limit: %d", code)
	}
	if code, _ := r.call(http.MethodDelete, "/v1/clusters/web", ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := r.call(http.MethodDelete, "/v1/clusters/web", ""); code != http.StatusNotFound {
		t.Fatalf("delete again: %d, want 404", code)
	}
}

func TestAPIShowsHealthAndEveryStepOfAHostRecovery(t *testing.T) {
	r := newRig(t)
	body := fmt.Sprintf(`{"name":"web","members":[%q,%q]}`, r.ids[0], r.ids[1])
	if code, b := r.call(http.MethodPost, "/v1/clusters", body); code != http.StatusCreated {
		t.Fatalf("%d %s", code, b)
	}
	r.tick()
	seen := []model.ClusterHealth{r.health("web")}
	if err := r.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		r.tick()
		if h := r.health("web"); h != seen[len(seen)-1] {
			seen = append(seen, h)
		}
		if len(seen) > 1 && seen[len(seen)-1] == model.Green {
			break
		}
	}
	if len(seen) < 3 || seen[0] != model.Green || seen[len(seen)-1] != model.Green || !slices.Contains(seen, model.Red) {
		t.Fatalf("health over the fault: %v, want Green → … Red … → Green", seen)
	}
	var incs []model.Incident
	r.get("/v1/incidents", &incs)
	if len(incs) != 1 {
		t.Fatalf("incidents: %+v", incs)
	}
	var steps []string
	for _, st := range incs[0].Steps {
		steps = append(steps, fmt.Sprintf("%s %s%s %s", st.Action, st.Host, st.Server, st.State))
	}
	want := []string{"fence host-1 succeeded", "mark-down host-1 succeeded",
		"evacuate host-1" + r.ids[0] + " succeeded", "evacuate host-1" + r.ids[1] + " succeeded"}
	if !slices.Equal(steps, want) {
		t.Fatalf("steps via the API: %v, want %v", steps, want)
	}
	var one model.Incident
	r.get(fmt.Sprintf("/v1/incidents/%d", incs[0].ID), &one)
	if one.State != model.IncidentResolved || len(one.Steps) != 4 || one.Steps[0].Rule == "" {
		t.Fatalf("incident by id: %+v", one)
	}
	// Every server is listed, by ID: the two evacuated ACTIVE and healthy off host-1,
	// the others ACTIVE where they were.
	var servers []engine.ServerStatus
	r.get("/v1/servers", &servers)
	listed := map[string]engine.ServerStatus{}
	for _, s := range servers {
		listed[s.ID] = s
	}
	if len(servers) != len(r.ids) || len(listed) != len(r.ids) {
		t.Fatalf("/v1/servers lists %d servers (%d distinct), want the %d of the cloud: %+v", len(servers), len(listed), len(r.ids), servers)
	}
	for i, id := range r.ids {
		s, ok := listed[id]
		switch {
		case !ok:
			t.Fatalf("server %s missing from /v1/servers", id)
		case s.Status != model.StatusActive || s.Verdict.Server != string(model.ServerHealthy):
			t.Fatalf("server %s: status %s, verdict %q, want ACTIVE and healthy", id, s.Status, s.Verdict.Server)
		case i < 2 && s.Host == "host-1":
			t.Fatalf("evacuated server %s still listed on host-1", id)
		case i >= 2 && s.Host != fmt.Sprintf("host-%d", i/2+1):
			t.Fatalf("server %s moved to %s though its host never failed", id, s.Host)
		}
	}
	var evs []model.Event
	r.get("/v1/events", &evs)
	if len(evs) < 8 {
		t.Fatalf("only %d events journaled", len(evs))
	}
	var h map[string]any
	r.get("/healthz", &h)
	if h["status"] != "ok" {
		t.Fatalf("healthz: %v", h)
	}
}
