package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
)

// pages follows a list's Link rel="next" from path, returning every page's keys.
func (r *rig) pages(path string, key func(map[string]any) string) [][]string {
	r.t.Helper()
	var out [][]string
	for path != "" && len(out) < 50 {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		var items []map[string]any
		if resp.StatusCode != http.StatusOK {
			r.t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		decodeJSON(r.t, resp, &items)
		var keys []string
		for _, it := range items {
			keys = append(keys, key(it))
		}
		out = append(out, keys)
		path = ""
		if l := resp.Header.Get("Link"); l != "" {
			if !strings.HasSuffix(l, `>; rel="next"`) || !strings.HasPrefix(l, "</v1/") {
				r.t.Fatalf("Link %q: want </v1/...>; rel=\"next\"", l)
			}
			path = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	return out
}

func name(it map[string]any) string { return fmt.Sprint(it["name"]) }
func id(it map[string]any) string   { return fmt.Sprint(it["id"]) }

func TestListsPageByLinkAndFilter(t *testing.T) {
	r := newRig(t)
	if got := r.pages("/v1/hosts?limit=2", name); fmt.Sprint(got) != "[[host-1 host-2] [host-3]]" {
		t.Errorf("hosts by 2: %v", got)
	}
	if got := r.pages("/v1/hosts", name); fmt.Sprint(got) != "[[host-1 host-2 host-3]]" {
		t.Errorf("hosts without a limit: %v, want all on one page", got)
	}
	if got := r.pages("/v1/servers?limit=4&host=host-2", id); fmt.Sprint(got) != "[[srv-00003 srv-00004]]" {
		t.Errorf("servers on host-2: %v", got)
	}
	if got := r.pages("/v1/servers?limit=5", id); len(got) != 2 || len(got[0]) != 5 || len(got[1]) != 1 {
		t.Errorf("servers by 5: %v, want 5 then 1", got)
	}
	for _, c := range []string{`{"name":"web","members":["srv-00001","srv-00003"]}`, `{"name":"db","members":["srv-00005"],"policy":"default"}`} {
		if code, body := r.call(http.MethodPost, "/v1/clusters", c); code != http.StatusCreated {
			t.Fatalf("%d %s", code, body)
		}
	}
	r.tick()
	if got := r.pages("/v1/servers?cluster=web", id); fmt.Sprint(got) != "[[srv-00001 srv-00003]]" {
		t.Errorf("servers of cluster web: %v", got)
	}
	if got := r.pages("/v1/servers?cluster=web&host=host-2", id); fmt.Sprint(got) != "[[srv-00003]]" {
		t.Errorf("servers of web on host-2: %v", got)
	}
	if got := r.pages("/v1/clusters?limit=1", name); fmt.Sprint(got) != "[[db] [web]]" {
		t.Errorf("clusters by 1: %v", got)
	}
	if got := r.pages("/v1/clusters?health=Red", name); fmt.Sprint(got) != "[[]]" {
		t.Errorf("Red clusters while all are Green: %v", got)
	}
	r.cloud.AddHost("host-4", "b", 10)
	r.tick()
	if got := r.pages("/v1/hosts?segment=b", name); fmt.Sprint(got) != "[[host-4]]" {
		t.Errorf("hosts of segment b: %v", got)
	}
}

// Incidents: filtered before the limit, newest first, paged by marker.
func TestIncidentsFilterAndPage(t *testing.T) {
	r := newRig(t)
	if code, body := r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["srv-00001","srv-00003"]}`); code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	r.tick()
	// host-1 dies: a host incident (resolved: srv-00001 evacuated). Then
	// srv-00003 (on host-2) is stopped: a server incident of cluster web.
	_ = r.cloud.KillHost("host-1")
	r.until("host-1's incident resolved", 120, func() bool {
		incs := r.incidents()
		return len(incs) == 1 && incs[0].State == model.IncidentResolved
	})
	r.cloud.BreakServer("srv-00003", true) // its recovery fails: the incident stays open a while
	if err := r.cloud.Crash("srv-00003"); err != nil {
		t.Fatal(err)
	}
	r.until("srv-00003's incident", 60, func() bool { return len(r.incidents()) == 2 })
	all := r.incidents()
	hostInc, srvInc := all[1], all[0]
	if hostInc.Subject.ID != "host-1" || srvInc.Subject.ID != "srv-00003" {
		t.Fatalf("incidents: %+v", all)
	}
	ids := func(path string) string {
		var out []string
		for _, p := range r.pages(path, id) {
			out = append(out, strings.Join(p, ","))
		}
		return strings.Join(out, " | ")
	}
	h, s := fmt.Sprint(hostInc.ID), fmt.Sprint(srvInc.ID)
	for _, c := range []struct{ path, want string }{
		{"/v1/incidents", s + "," + h},
		{"/v1/incidents?limit=1", s + " | " + h},
		{"/v1/incidents?marker=" + s, h},
		{"/v1/incidents?state=resolved", h},
		{"/v1/incidents?state=open,waiting", s},
		{"/v1/incidents?state=closed&limit=1", h},
		{"/v1/incidents?state=open,waiting,resolved,escalated,superseded&limit=1", s + " | " + h},
		{"/v1/incidents?cluster=web&host=host-2", s},
		{"/v1/incidents?host=host-1", h},
		{"/v1/incidents?host=host-9", ""},
		{"/v1/incidents?cluster=db", ""},
	} {
		if got := ids(c.path); got != c.want {
			t.Errorf("GET %s: incidents %q, want %q", c.path, got, c.want)
		}
	}
}

// Bad list parameters are a 400 naming the parameter.
func TestListParametersRefusedNamingThem(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct{ path, field string }{
		{"/v1/incidents?sate=open", "sate"},
		{"/v1/incidents?state=opne", "state"},
		{"/v1/incidents?limit=0", "limit"},
		{"/v1/incidents?marker=x", "marker"},
		{"/v1/clusters?health=green", "health"},
		{"/v1/clusters?hosts=a", "hosts"},
		{"/v1/hosts?segmnet=a", "segmnet"},
		{"/v1/servers?limit=-1", "limit"},
		{"/v1/servers?clusters=web", "clusters"},
		{"/v1/events?before=3", "before"},
	} {
		code, body := r.call(http.MethodGet, c.path, "")
		if code != http.StatusBadRequest || !strings.Contains(string(body), fmt.Sprintf(`"field": %q`, c.field)) {
			t.Errorf("GET %s: %d %s, want 400 naming %q", c.path, code, body, c.field)
		}
	}
}

func decodeJSON(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", resp.Request.URL, err)
	}
}
