package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/explain"
	"github.com/vigil-ha/vigil/model"
)

// GET /v1/explain/{incident|server|host}/{id} tells the chain of a host recovery:
// its verdict and rule, its policy, each step with its outcome; bad kinds and
// numbers are a 400 naming the field, unknown subjects a 404.
func TestExplainRoute(t *testing.T) {
	r := newRig(t)
	body := fmt.Sprintf(`{"name":"web","members":[%q,%q]}`, r.ids[0], r.ids[1])
	if code, b := r.call(http.MethodPost, "/v1/clusters", body); code != http.StatusCreated {
		t.Fatalf("%d %s", code, b)
	}
	r.tick()
	if err := r.cloud.KillHost("host-1"); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		r.tick()
	}
	var incs []model.Incident
	r.get("/v1/incidents", &incs)
	if len(incs) != 1 {
		t.Fatalf("incidents: %+v", incs)
	}
	var byID, byHost explain.Chain
	r.get(fmt.Sprintf("/v1/explain/incident/%d", incs[0].ID), &byID)
	r.get("/v1/explain/host/host-1", &byHost)
	for name, c := range map[string]explain.Chain{"incident": byID, "host": byHost} {
		if c.Incident == nil || c.Incident.ID != incs[0].ID || c.Verdict == nil || c.Verdict.Rule == "" || c.Policy == nil || c.Policy.Name != "default" {
			t.Fatalf("by %s: %+v", name, c)
		}
		var acts []string
		for _, s := range c.Steps {
			acts = append(acts, string(s.Action)+" "+string(s.State))
			if !strings.Contains(s.Sentence, "Why: ") {
				t.Errorf("by %s: step %d says no why: %q", name, s.Seq, s.Sentence)
			}
		}
		if got := strings.Join(acts, ", "); got != "fence succeeded, mark-down succeeded, evacuate succeeded, evacuate succeeded" {
			t.Errorf("by %s: steps %s", name, got)
		}
		if !strings.HasPrefix(c.Outcome, "Resolved") {
			t.Errorf("by %s: outcome %q", name, c.Outcome)
		}
	}
	if byHost.Current == nil || byHost.Current.Subject.ID != "host-1" {
		t.Errorf("by host: no current verdict: %+v", byHost.Current)
	}
	var srv explain.Chain
	r.get("/v1/explain/server/"+r.ids[4], &srv)
	if srv.Incident != nil || srv.Current == nil || !strings.HasPrefix(srv.Outcome, "no incident") {
		t.Errorf("a healthy server: %+v", srv)
	}
	for path, want := range map[string]int{
		"/v1/explain/incident/x":     http.StatusBadRequest,
		"/v1/explain/incident/0":     http.StatusBadRequest,
		"/v1/explain/cluster/web":    http.StatusBadRequest,
		"/v1/explain/incident/999":   http.StatusNotFound,
		"/v1/explain/host/no-such":   http.StatusNotFound,
		"/v1/explain/server/no-such": http.StatusNotFound,
	} {
		if code, b := r.call(http.MethodGet, path, ""); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, b, want)
		}
	}
}
