package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// until ticks (one simulated second each) until cond holds, or fails the test.
func (r *rig) until(what string, max int, cond func() bool) {
	r.t.Helper()
	for range max {
		if cond() {
			return
		}
		r.tick()
	}
	r.t.Fatalf("not within %d s: %s", max, what)
}

func (r *rig) events(kind string) []string {
	evs, _ := r.db.Events(context.Background(), 0, 100000)
	var out []string
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

func (r *rig) incidents() []model.Incident {
	incs, _ := r.db.Incidents(context.Background(), 100)
	return incs
}

// An operator puts a host in maintenance through the API; Vigil restarts (a new
// engine on the same journal) and the host dies: no fence, no evacuation, and its
// incident escalates saying the host is in maintenance. Maintenance off: Vigil
// fences and evacuates it. Then the operator powers it on and asks Vigil to return
// it: Nova refuses the force-up until the compute cleaned up, Vigil retries, and
// the host ends forced up.
func TestMaintenanceSurvivesRestartThenHostReturn(t *testing.T) {
	r := newRig(t)
	if code, body := r.call(http.MethodPost, "/v1/clusters", fmt.Sprintf(`{"name":"web","members":[%q,%q]}`, r.ids[0], r.ids[1])); code != http.StatusCreated {
		t.Fatalf("cluster: %d %s", code, body)
	}
	for _, c := range []struct {
		path, body string
		code       int
		field, msg string
	}{
		{"/v1/hosts/no-such-host/maintenance", `{"on":true}`, http.StatusNotFound, "", "not a compute host"},
		{"/v1/hosts/host-1/maintenance", `{"reason":"x"}`, http.StatusBadRequest, "on", "required"},
		{"/v1/hosts/host-1/maintenance", `{"on":"yes"}`, http.StatusBadRequest, "on", "must be bool"},
		{"/v1/hosts/no-such-host/return", ``, http.StatusNotFound, "", "not a compute host"},
	} {
		code, body := r.call(http.MethodPost, c.path, c.body)
		var e api.Error
		_ = json.Unmarshal(body, &e)
		if code != c.code || e.Field != c.field || !strings.Contains(e.Error, c.msg) {
			t.Fatalf("POST %s %s: %d %s, want %d naming field %q with %q", c.path, c.body, code, body, c.code, c.field, c.msg)
		}
	}
	if code, body := r.call(http.MethodPost, "/v1/hosts/host-1/maintenance", `{"on":true,"reason":"firmware"}`); code != http.StatusOK {
		t.Fatalf("maintenance on: %d %s", code, body)
	}
	// Vigil restarts on the same journal.
	eng, err := engine.New(context.Background(), engine.Config{Compute: r.cloud, Fencer: r.cloud, Store: r.db, Now: func() time.Time { return r.now },
		Sleep: func(_ context.Context, d time.Duration) error { r.now = r.now.Add(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	r.srv.Config.Handler = validated(t, api.Handler(eng, r.db, nil))
	r.tick()
	var hosts []engine.HostStatus
	r.get("/v1/hosts", &hosts)
	if h := hosts[0]; h.Name != "host-1" || !h.Maintenance || h.Operator == nil || h.Operator.Reason != "firmware" || h.Verdict.Host != string(model.HostMaintenance) {
		t.Fatalf("after a restart: %+v, want host-1 still in maintenance (firmware)", h)
	}
	_ = r.cloud.KillHost("host-1")
	r.until("an incident escalated saying the host is in maintenance", 300, func() bool {
		for _, in := range r.incidents() {
			if in.Subject.ID == "host-1" && in.State == model.IncidentEscalated && strings.Contains(in.Reason, "in maintenance") && strings.Contains(in.Reason, r.ids[0]) {
				return true
			}
		}
		return false
	})
	for range 120 {
		r.tick()
	}
	for _, in := range r.incidents() {
		for _, st := range in.Steps {
			if st.Action == model.ActFence || st.Action == model.ActEvacuate {
				t.Fatalf("step %s of incident %d taken on a host in maintenance", st.Action, in.ID)
			}
		}
	}
	if got := r.cloud.Truth("host-1"); got.ForcedDown {
		t.Fatalf("host in maintenance forced down: %+v", got)
	}
	// A return now: its protected servers are still placed on it.
	var ret model.HostReturn
	code, body := r.call(http.MethodPost, "/v1/hosts/host-1/return", "")
	if err := json.Unmarshal(body, &ret); err != nil || code != http.StatusOK || ret.Returned || len(ret.Left) == 0 || !strings.Contains(ret.Left[0], "still placed on it") {
		t.Fatalf("return with servers on it: %d %s, want left: servers still placed", code, body)
	}
	if code, body := r.call(http.MethodPost, "/v1/hosts/host-1/maintenance", `{"on":false}`); code != http.StatusOK {
		t.Fatalf("maintenance off: %d %s", code, body)
	}
	r.until("both servers evacuated", 300, func() bool {
		return r.cloud.ServerHost(r.ids[0]) != "host-1" && r.cloud.ServerHost(r.ids[1]) != "host-1" && len(r.eng.OpenIncidents()) == 0
	})
	if !r.cloud.Truth("host-1").ForcedDown {
		t.Fatal("evacuated without a force-down")
	}
	// Returned while still off: left, its BMC says off; nothing changed.
	code, body = r.call(http.MethodPost, "/v1/hosts/host-1/return", "")
	_ = json.Unmarshal(body, &ret)
	if ret.Returned || len(ret.Left) != 1 || !strings.Contains(ret.Left[0], "power off") || !r.cloud.Truth("host-1").ForcedDown {
		t.Fatalf("return of a host still off: %d %s", code, body)
	}
	// Powered on: its compute cleans up its evacuation records 8 s after it starts;
	// the first force-ups are refused and retried.
	r.cloud.SetCleanupDelay(8 * time.Second)
	_ = r.cloud.PowerOnHost("host-1")
	r.tick()
	code, body = r.call(http.MethodPost, "/v1/hosts/host-1/return", "")
	_ = json.Unmarshal(body, &ret)
	if !ret.Returned || len(ret.Left) != 0 || r.cloud.Truth("host-1").ForcedDown {
		t.Fatalf("return of a healthy host: %d %s; want forced up", code, body)
	}
	if !strings.Contains(strings.Join(ret.Done, "\n"), "forced its compute service up (attempt ") || strings.Contains(strings.Join(ret.Done, "\n"), "attempt 1,") {
		t.Fatalf("done %q: want the force-up retried past Nova's refusal", ret.Done)
	}
	// Idempotent: asked again, nothing left to undo.
	code, body = r.call(http.MethodPost, "/v1/hosts/host-1/return", "")
	_ = json.Unmarshal(body, &ret)
	if !ret.Returned || !strings.Contains(strings.Join(ret.Done, "\n"), "not forced down: nothing to undo") {
		t.Fatalf("second return: %d %s", code, body)
	}
	if n := len(r.events("host-return")); n == 0 {
		t.Fatal("host return not journaled")
	}
}
