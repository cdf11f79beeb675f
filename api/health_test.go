package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/store"
)

type readiness struct {
	Ready   bool                 `json:"ready"`
	Leader  bool                 `json:"leader"`
	Failing []string             `json:"failing"`
	Checks  map[string]api.Check `json:"checks"`
	// Leases as answered: their ttl is a duration string ("10s"), not store.Lease's.
	Leases []struct {
		Shard  string `json:"shard"`
		Holder string `json:"holder"`
		TTL    string `json:"ttl"`
	} `json:"leases"`
}

func (r *rig) readyz() (int, readiness) {
	r.t.Helper()
	code, body := r.call(http.MethodGet, "/readyz", "")
	var rd readiness
	if err := json.Unmarshal(body, &rd); err != nil {
		r.t.Fatalf("/readyz body %s: %v", body, err)
	}
	return code, rd
}

// /healthz says the process serves, whatever its cloud; /readyz says whether it
// should get traffic, and names what fails: the cloud, the store, leadership.
func TestHealthzAliveReadyzNamesWhatFails(t *testing.T) {
	r := newRig(t)
	if code, rd := r.readyz(); code != http.StatusOK || !rd.Ready || len(rd.Failing) != 0 ||
		!rd.Checks["cloud"].OK || !rd.Checks["store"].OK || !rd.Checks["leading"].OK {
		t.Fatalf("healthy replica: /readyz %d %+v, want 200, every check ok", code, rd)
	}

	r.cloud.SetAPIDown(true)
	r.tick()
	code, rd := r.readyz()
	if code != http.StatusServiceUnavailable || rd.Ready || !slices.Equal(rd.Failing, []string{"cloud"}) || rd.Checks["cloud"].Error == "" {
		t.Fatalf("cloud down: /readyz %d %+v, want 503 failing [cloud] with its error", code, rd)
	}
	var h map[string]any
	if code, body := r.call(http.MethodGet, "/healthz", ""); code != http.StatusOK || json.Unmarshal(body, &h) != nil || h["status"] != "ok" {
		t.Fatalf("cloud down: /healthz %d %s, want 200 ok (alive)", code, body)
	}
	r.cloud.SetAPIDown(false)
	r.tick()
	if code, _ := r.readyz(); code != http.StatusOK {
		t.Fatalf("cloud back: /readyz %d, want 200", code)
	}

	// The store closed under it: the lease keeper's next renewal fails.
	r.db.Close()
	_ = r.eng.Keeper().Tick(context.Background())
	code, rd = r.readyz()
	if code != http.StatusServiceUnavailable || !slices.Contains(rd.Failing, "store") || rd.Checks["store"].Error == "" {
		t.Fatalf("store closed: /readyz %d %+v, want 503 failing store with its error", code, rd)
	}
}

// standby is an engine that leads no shard: another replica, a, does.
type standby struct{ *engine.Engine }

func (s standby) Leadership() engine.Leading {
	return engine.Leading{Replica: "b", Leads: map[string]int64{}, Leases: []store.Lease{{Shard: "all", Holder: "a", Epoch: 3}}}
}
func (s standby) Leads() bool { return false }
func (s standby) Standby(string) error {
	return fmt.Errorf("%w: shard all: a", engine.ErrStandby)
}

// A standby is not ready (503, failing leading), names its leader, and is alive.
func TestReadyzStandbyIs503NamingTheLeader(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(api.Handler(standby{r.eng}, r.db, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd readiness
	_ = json.NewDecoder(resp.Body).Decode(&rd)
	if resp.StatusCode != http.StatusServiceUnavailable || rd.Leader || !slices.Equal(rd.Failing, []string{"leading"}) ||
		len(rd.Leases) != 1 || rd.Leases[0].Holder != "a" || rd.Checks["leading"].Error == "" {
		t.Fatalf("standby: /readyz %d %+v, want 503 failing [leading] naming leader a", resp.StatusCode, rd)
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("standby: /healthz %v %v, want 200", resp, err)
	}
}
