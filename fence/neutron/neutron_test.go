package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
)

const adminToken = "gAAAA-admin-token-never-shown"

// fakeNeutron answers as neutron-server does: GET /v2.0/ports?device_id=X lists
// the server's ports with their binding host and fixed IPs; PUT /v2.0/ports/{id}
// with {"port": {"admin_state_up": B}} sets one. putStatus, when set, is the
// status every PUT answers instead (with Neutron's error body).
type fakeNeutron struct {
	mu        sync.Mutex
	ports     map[string]map[string]any // id -> port
	puts      []string                  // "id admin_state_up=B" in order
	putStatus int
	t         *testing.T
}

func newFakeNeutron(t *testing.T) (*fakeNeutron, *Ports) {
	f := &fakeNeutron{t: t, ports: map[string]map[string]any{
		"p1":    {"id": "p1", "device_id": "srv-1", "admin_state_up": true, "binding:host_id": "fake-compute-3", "fixed_ips": []map[string]string{{"subnet_id": "s", "ip_address": "192.0.2.11"}}},
		"p2":    {"id": "p2", "device_id": "srv-1", "admin_state_up": false, "binding:host_id": "fake-compute-3", "fixed_ips": []map[string]string{{"subnet_id": "s", "ip_address": "192.0.2.12"}}},
		"other": {"id": "other", "device_id": "srv-2", "admin_state_up": true, "binding:host_id": "fake-compute-1"},
	}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	c := &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: adminToken}, Endpoint: srv.URL + "/", ResourceBase: srv.URL + "/v2.0/"}
	return f, New(c)
}

func (f *fakeNeutron) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-Auth-Token") != adminToken {
		http.Error(w, `{"error": "no token"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2.0/ports":
		dev := r.URL.Query().Get("device_id")
		if dev == "" {
			f.t.Errorf("ports listed without device_id: %s (every port of the cloud)", r.URL)
		}
		var out []map[string]any
		for _, id := range slices.Sorted(mapsKeys(f.ports)) {
			if p := f.ports[id]; p["device_id"] == dev {
				out = append(out, p)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ports": out})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v2.0/ports/"):
		id := strings.TrimPrefix(r.URL.Path, "/v2.0/ports/")
		raw, _ := io.ReadAll(r.Body)
		var body map[string]map[string]any
		if err := json.Unmarshal(raw, &body); err != nil || len(body) != 1 || len(body["port"]) != 1 {
			f.t.Errorf("PUT %s body %s: want exactly {\"port\": {\"admin_state_up\": B}}", id, raw)
		}
		up, ok := body["port"]["admin_state_up"].(bool)
		if !ok {
			f.t.Errorf("PUT %s body %s: no boolean admin_state_up", id, raw)
		}
		if f.putStatus != 0 {
			w.WriteHeader(f.putStatus)
			_, _ = io.WriteString(w, `{"NeutronError": {"type": "PolicyNotAuthorized", "message": "rule:update_port:admin_state_up is disallowed by policy", "detail": ""}}`)
			return
		}
		p := f.ports[id]
		if p == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		p["admin_state_up"] = up
		f.puts = append(f.puts, id+" admin_state_up="+map[bool]string{true: "true", false: "false"}[up])
		_ = json.NewEncoder(w).Encode(map[string]any{"port": p})
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func mapsKeys(m map[string]map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// List reads the server's ports (by device_id) with binding host and addresses.
func TestListReadsTheServersPortsByDeviceID(t *testing.T) {
	_, p := newFakeNeutron(t)
	got, err := p.List(context.Background(), "srv-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.Port{{ID: "p1", AdminUp: true, Host: "fake-compute-3", IPs: []string{"192.0.2.11"}}, {ID: "p2", AdminUp: false, Host: "fake-compute-3", IPs: []string{"192.0.2.12"}}}
	if len(got) != 2 || got[0].ID != want[0].ID || got[0].Host != want[0].Host || !slices.Equal(got[0].IPs, want[0].IPs) || got[0].AdminUp != true || got[1].AdminUp != false {
		t.Fatalf("ports %+v, want %+v", got, want)
	}
}

// SetAdmin down sends one PUT {"port": {"admin_state_up": false}} per port still
// up (a port already down is left alone: a resumed step redoes nothing), returns
// every port's ID, and touches no other server's port.
func TestSetAdminDownPutsOnlyThePortsStillUp(t *testing.T) {
	f, p := newFakeNeutron(t)
	ids, err := p.SetAdmin(context.Background(), "srv-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"p1", "p2"}) || !slices.Equal(f.puts, []string{"p1 admin_state_up=false"}) {
		t.Fatalf("ids %v, PUTs %v; want both ids, one PUT of p1 down", ids, f.puts)
	}
	if f.ports["other"]["admin_state_up"] != true {
		t.Fatal("another server's port was set down")
	}
	if ids, err = p.SetAdmin(context.Background(), "srv-1", true); err != nil || !slices.Equal(f.puts, []string{"p1 admin_state_up=false", "p1 admin_state_up=true", "p2 admin_state_up=true"}) {
		t.Fatalf("up: ids %v err %v, PUTs %v", ids, err, f.puts)
	}
}

// Neutron refusing (403) is terminal, a 5xx passing; either error says which port
// of which server and where (Neutron), and never carries the token.
func TestSetAdminErrorsSayWhatAndWhere(t *testing.T) {
	for _, tc := range []struct {
		status      int
		terminal    bool
		unavailable bool
	}{{http.StatusForbidden, true, false}, {http.StatusServiceUnavailable, false, true}, {http.StatusConflict, false, false}} {
		f, p := newFakeNeutron(t)
		f.putStatus = tc.status
		_, err := p.SetAdmin(context.Background(), "srv-1", false)
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		msg := err.Error()
		if !strings.Contains(msg, "set port p1 of server srv-1 admin_state_up=false (Neutron)") || strings.Contains(msg, adminToken) {
			t.Errorf("%d: error %q: want what and where, never the token", tc.status, msg)
		}
		if cloud.IsTerminal(err) != tc.terminal || errors.Is(err, cloud.ErrUnavailable) != tc.unavailable {
			t.Errorf("%d: terminal %v unavailable %v, want %v %v", tc.status, cloud.IsTerminal(err), errors.Is(err, cloud.ErrUnavailable), tc.terminal, tc.unavailable)
		}
		if tc.status == http.StatusConflict && !errors.Is(err, cloud.ErrConflict) {
			t.Errorf("409: %v, want cloud.ErrConflict", err)
		}
	}
}

// Neutron unreachable: a passing error naming the listing.
func TestListUnreachableIsPassing(t *testing.T) {
	c := &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: adminToken}, Endpoint: "http://127.0.0.1:1/", ResourceBase: "http://127.0.0.1:1/v2.0/"}
	_, err := New(c).SetAdmin(context.Background(), "srv-1", false)
	if !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) || !strings.Contains(err.Error(), "list the ports of server srv-1 (Neutron)") {
		t.Fatalf("error %v: want a passing error naming the listing", err)
	}
}
