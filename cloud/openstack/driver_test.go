package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack/novatime"
	"github.com/vigil-ha/vigil/model"
)

// fakeDriver is a Driver talking to h instead of a real Nova (no keystone).
func fakeDriver(t *testing.T, h http.Handler) *Driver {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	counter := &callCounter{calls: map[string]int{}}
	clock := newCloudClock(time.Now)
	clock.setHost(strings.TrimPrefix(srv.URL, "http://"))
	pc := &gophercloud.ProviderClient{}
	pc.HTTPClient = http.Client{Transport: &countingTransport{next: &clockTransport{next: http.DefaultTransport, clock: clock}, counter: counter}}
	pc.SetToken("test-token")
	return &Driver{cfg: Config{Timeout: 2 * time.Second, ResyncInterval: time.Minute, Now: time.Now}, cloud: "fake", counter: counter, clock: clock,
		compute:  &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: srv.URL + "/v2.1/", Type: "compute", Microversion: "2.93"},
		services: map[string]string{}, intents: map[string]intentEntry{}}
}

func novaErr(w http.ResponseWriter, code int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{kind: map[string]any{"code": code, "message": msg}})
}

func TestParseNovaTime(t *testing.T) {
	want := time.Date(2026, 11, 24, 11, 44, 56, 694970000, time.UTC)
	for _, s := range []string{"2026-11-24 11:44:56.694970", "2026-11-24T11:44:56.694970", "2026-11-24T11:44:56.694970Z",
		"2026-11-24T11:44:56.694970+00:00", "2026-11-24T12:44:56.694970+01:00"} {
		got, err := novatime.Parse(s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("novatime.Parse(%q) = %v, %v; want %v UTC", s, got, err, want)
		}
	}
	if got, _ := novatime.Parse("2026-11-24T11:44:56Z"); !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("whole seconds: %v", got)
	}
	if _, err := novatime.Parse("yesterday"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestMicroversionOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{{"2.9", "2.53", true}, {"2.53", "2.93", true}, {"2.93", "2.93", false}, {"2.100", "2.93", false}, {"3.0", "2.93", false}} {
		if got := lessVersion(c.a, c.b); got != c.less {
			t.Errorf("lessVersion(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestVersionRoot(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8774/v2.1/":                 "http://127.0.0.1:8774/v2.1/",
		"https://nova.example:8774/v2.1/0123abcd/":    "https://nova.example:8774/v2.1/",
		"https://cloud.example/compute/v2.1":          "https://cloud.example/compute/v2.1/",
		"https://cloud.example/compute/v2.1/abcd1234": "https://cloud.example/compute/v2.1/",
	} {
		if got := versionRoot(in); got != want {
			t.Errorf("versionRoot(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	var hits atomic.Int32
	d := fakeDriver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case strings.Contains(r.URL.Path, "/s500/"):
			novaErr(w, 500, "computeFault", "Unexpected API Error.")
		case strings.Contains(r.URL.Path, "/s409/"):
			novaErr(w, 409, "conflictingRequest", "Cannot 'reboot' instance s409 while it is in task_state rebuilding")
		case strings.Contains(r.URL.Path, "/s404/"):
			novaErr(w, 404, "itemNotFound", "Instance s404 could not be found.")
		case strings.Contains(r.URL.Path, "/s403/"):
			novaErr(w, 403, "forbidden", "Policy doesn't allow os_compute_api:servers:reboot to be performed.")
		case strings.Contains(r.URL.Path, "/s400/"):
			novaErr(w, 400, "badRequest", "Compute service of fake-compute-1 is still in use.")
		case strings.Contains(r.URL.Path, "/slow/"):
			io.Copy(io.Discard, r.Body) // the server notices a gone client only once the body is read
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			w.WriteHeader(202)
		}
	}))
	ctx := context.Background()
	tests := []struct {
		server   string
		is       error
		terminal bool
		mentions string
	}{
		{"s500", cloud.ErrUnavailable, false, "Unexpected API Error"},
		{"s409", cloud.ErrConflict, false, "task_state rebuilding"},
		{"s404", cloud.ErrNotFound, true, "could not be found"},
		{"s403", nil, true, "admin role"},
		{"slow", cloud.ErrUnavailable, false, "unavailable"},
		{"ok", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			err := d.Reboot(ctx, tt.server, true)
			if tt.server == "ok" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || cloud.IsTerminal(err) != tt.terminal ||
				!strings.Contains(err.Error(), tt.mentions) || !strings.Contains(err.Error(), tt.server) {
				t.Fatalf("got %v (terminal %v); want %v, terminal %v, mentioning %q and the server", err, cloud.IsTerminal(err), tt.is, tt.terminal, tt.mentions)
			}
		})
	}
	// evacuate refused while the source service is up: a retryable conflict in plain words
	err := d.Evacuate(ctx, "s400", "")
	if !errors.Is(err, cloud.ErrConflict) || cloud.IsTerminal(err) || !strings.Contains(err.Error(), "evacuate s400 refused: source compute service is up") ||
		!strings.Contains(err.Error(), "still in use") {
		t.Fatalf("evacuate refused: %v", err)
	}
	// a caller that gives up is not a cloud that is unavailable
	cctx, cancel := context.WithCancel(ctx)
	go func() { <-time.After(100 * time.Millisecond); cancel() }()
	err = d.Reboot(cctx, "slow", true)
	if !errors.Is(err, context.Canceled) || errors.Is(err, cloud.ErrUnavailable) {
		t.Fatalf("cancelled call: %v, want context.Canceled and not ErrUnavailable", err)
	}
	// actions are never retried by the driver: one call each
	before := hits.Load()
	d.Reboot(ctx, "s500", false)
	if n := hits.Load() - before; n != 1 {
		t.Fatalf("a failed reboot was sent %d times; actions must not be retried inside the driver", n)
	}
}

func TestListServersPagesRetriesAndCounts(t *testing.T) {
	var fails atomic.Int32
	fails.Store(1)
	var query atomic.Value
	d := fakeDriver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("OpenStack-API-Version") != "compute 2.93" {
			novaErr(w, 400, "badRequest", "no microversion header")
			return
		}
		switch {
		case r.URL.Path == "/v2.1/servers/detail" && r.URL.Query().Get("marker") == "":
			if fails.Add(-1) >= 0 {
				novaErr(w, 503, "serviceUnavailable", "try later")
				return
			}
			query.Store(r.URL.RawQuery)
			fmt.Fprintf(w, `{"servers": [
			  {"id": "a", "name": "a", "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "h1", "OS-EXT-STS:task_state": null,
			   "OS-EXT-STS:vm_state": "active", "image": {"id": "img"}, "updated": "2026-11-24T11:44:56Z"},
			  {"id": "b", "name": "b", "status": "SHUTOFF", "OS-EXT-SRV-ATTR:host": "h1", "OS-EXT-STS:task_state": null,
			   "OS-EXT-STS:vm_state": "stopped", "image": "", "updated": "2026-11-24T11:44:57Z"}],
			 "servers_links": [{"rel": "next", "href": "http://%s/v2.1/servers/detail?all_tenants=1&marker=b"}]}`, r.Host)
		case r.URL.Path == "/v2.1/servers/detail":
			fmt.Fprint(w, `{"servers": [
			  {"id": "c", "name": "c", "status": "SHUTOFF", "OS-EXT-SRV-ATTR:host": "h2", "OS-EXT-STS:task_state": null,
			   "OS-EXT-STS:vm_state": "stopped", "image": {"id": "img"}, "updated": "2026-11-24 11:44:58"},
			  {"id": "d", "name": "d", "status": "DELETED", "OS-EXT-SRV-ATTR:host": "", "OS-EXT-STS:task_state": null,
			   "OS-EXT-STS:vm_state": "deleted", "image": {"id": "img"}, "updated": "2026-11-24 11:44:59"}]}`)
		case r.URL.Path == "/v2.1/servers/b/os-instance-actions":
			// newest first, as Nova lists them: a user's stop
			fmt.Fprint(w, `{"instanceActions": [
			  {"action": "stop", "request_id": "req-2", "start_time": "2026-11-24T11:44:57.000000", "user_id": "u1"},
			  {"action": "create", "request_id": "req-1", "start_time": "2026-11-24T11:40:00.000000", "user_id": "u1"}]}`)
		case r.URL.Path == "/v2.1/servers/c/os-instance-actions":
			// Nova's power sync: a stop with no user
			fmt.Fprint(w, `{"instanceActions": [
			  {"action": "stop", "request_id": "req-4", "start_time": "2026-11-24T11:44:58.000000", "user_id": null},
			  {"action": "create", "request_id": "req-3", "start_time": "2026-11-24T11:40:00.000000", "user_id": "u1"}]}`)
		default:
			novaErr(w, 404, "itemNotFound", r.URL.Path)
		}
	}))
	since := time.Date(2026, 11, 24, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	got, err := d.ListServers(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	if q := query.Load().(string); !strings.Contains(q, "changes-since=2026-11-24T10%3A00%3A00Z") || !strings.Contains(q, "all_tenants=1") {
		t.Fatalf("query %q: want all_tenants and changes-since in UTC", q)
	}
	want := map[string]struct {
		status string
		intent model.PowerIntent
	}{"a": {"ACTIVE", model.IntentOn}, "b": {"SHUTOFF", model.IntentOff}, "c": {"SHUTOFF", model.IntentOn}, "d": {"DELETED", model.IntentUnknown}}
	if len(got) != len(want) {
		t.Fatalf("got %d servers over two pages: %+v", len(got), got)
	}
	for _, s := range got {
		if w := want[s.ID]; s.Status != w.status || s.Intent != w.intent {
			t.Errorf("server %s: %s intent %q, want %s intent %q", s.ID, s.Status, s.Intent, w.status, w.intent)
		}
	}
	if got[0].Image != "img" || got[1].Image != "" || got[0].Host != "h1" || got[2].Updated.IsZero() {
		t.Fatalf("fields: %+v", got)
	}
	calls := d.Calls()
	if calls["list-servers"] != 3 || calls["actions"] != 2 {
		t.Fatalf("calls %v: want 3 list-servers (one 503 retried, two pages) and 2 actions", calls)
	}
	// unchanged SHUTOFF servers: their intent comes from the cache
	if _, err := d.ListServers(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if c := d.Calls(); c["actions"] != 2 || c["list-servers"] != 5 {
		t.Fatalf("second poll calls %v: want no more instance-action reads", c)
	}
	if d.ResyncDue(time.Now()) || !d.ResyncDue(time.Now().Add(2*time.Minute)) {
		t.Fatal("ResyncDue should follow the last full listing and the interval")
	}
}

func TestForceUpRefusedWhileEvacuationRecordsRemain(t *testing.T) {
	var body atomic.Value
	d := fakeDriver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v2.1/os-services":
			fmt.Fprint(w, `{"services": [{"id": "uuid-1", "binary": "nova-compute", "host": "h1", "zone": "az1",
			  "status": "enabled", "state": "down", "updated_at": "2026-11-24T11:44:56.000000", "forced_down": true}]}`)
		case r.Method == http.MethodPut && r.URL.Path == "/v2.1/os-services/uuid-1":
			var b map[string]any
			json.NewDecoder(r.Body).Decode(&b)
			body.Store(b)
			if b["forced_down"] == false {
				novaErr(w, 400, "badRequest", "Unable to force up host h1 as `done` evacuation migration records remain associated with the host.")
				return
			}
			fmt.Fprint(w, `{"service": {}}`)
		default:
			novaErr(w, 404, "itemNotFound", r.URL.Path)
		}
	}))
	ctx := context.Background()
	if err := d.ForceDown(ctx, "h1", true); err != nil {
		t.Fatal(err)
	}
	if b := body.Load().(map[string]any); b["forced_down"] != true || len(b) != 1 {
		t.Fatalf("force-down body %v", b)
	}
	err := d.ForceDown(ctx, "h1", false)
	if !errors.Is(err, cloud.ErrConflict) || cloud.IsTerminal(err) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("force-up refused: %v, want a retryable conflict", err)
	}
	if b := body.Load().(map[string]any); b["forced_down"] != false {
		t.Fatalf("force-up body %v: forced_down false must be sent", b)
	}
	err = d.ForceDown(ctx, "nope", true)
	if !errors.Is(err, cloud.ErrNotFound) || !cloud.IsTerminal(err) {
		t.Fatalf("unknown host: %v", err)
	}
	hosts, err := d.ListHosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0].Segment != "az1" || hosts[0].Service != model.ServiceDown || !hosts[0].ForcedDown || hosts[0].LastSeenUp.IsZero() {
		t.Fatalf("hosts %+v, %v", hosts, err)
	}
}

func TestNegotiateMicroversion(t *testing.T) {
	for _, c := range []struct{ max, want, err string }{
		{"2.96", "2.93", ""}, {"2.93", "2.93", ""}, {"2.60", "2.60", ""}, {"2.38", "", "needs 2.53"}, {"", "", "does not support microversions"},
	} {
		d := fakeDriver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v2.1/" {
				novaErr(w, 404, "itemNotFound", r.URL.Path)
				return
			}
			fmt.Fprintf(w, `{"version": {"id": "v2.1", "version": %q, "min_version": "2.1"}}`, c.max)
		}))
		err := d.negotiate(context.Background())
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("max %q: error %v, want one saying %q", c.max, err, c.err)
			}
			continue
		}
		if err != nil || d.Microversion() != c.want || d.compute.Microversion != c.want {
			t.Errorf("max %q: negotiated %q (%v), want %s", c.max, d.Microversion(), err, c.want)
		}
	}
}
