package openstack

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/model"
)

// Free room per host is capacity less used, from one allocation-candidates read
// (plus the providers' names), cached for PlacementInterval: the number of calls
// does not grow with hosts or polls. A provider missing from the answer has no
// room for the smallest server; a host with no provider is unknown.
func TestFreeFromPlacementInBulk(t *testing.T) {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"services": []map[string]any{
			{"id": "s1", "binary": "nova-compute", "host": "c1", "state": "up", "status": "enabled"},
			{"id": "s2", "binary": "nova-compute", "host": "c2", "state": "up", "status": "enabled"},
			{"id": "s3", "binary": "nova-compute", "host": "c3", "state": "up", "status": "enabled"}}})
	})
	mux.HandleFunc("/placement/resource_providers", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"resource_providers": []map[string]any{{"uuid": "u1", "name": "c1"}, {"uuid": "u2", "name": "c2"}}})
	})
	mux.HandleFunc("/placement/allocation_candidates", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("OpenStack-API-Version"); got != "placement 1.27" {
			t.Errorf("placement microversion %q", got)
		}
		if got := r.URL.Query().Get("resources"); got != "VCPU:1,MEMORY_MB:1" {
			t.Errorf("resources %q", got)
		}
		reply(w, map[string]any{"allocation_requests": []any{}, "provider_summaries": map[string]any{
			"u1": map[string]any{"resources": map[string]any{
				"VCPU": map[string]int{"capacity": 64, "used": 10}, "MEMORY_MB": map[string]int{"capacity": 4096, "used": 1024},
				"DISK_GB": map[string]int{"capacity": 100, "used": 20}}}}})
	})
	d := fakeDriver(t, mux)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d.cfg.Now = func() time.Time { return now }
	d.cfg.PlacementInterval = 15 * time.Second
	d.placement = &gophercloud.ServiceClient{ProviderClient: d.compute.ProviderClient,
		Endpoint: d.compute.Endpoint[:len(d.compute.Endpoint)-len("v2.1/")] + "placement/", Type: "placement"}
	for range 3 {
		hosts, err := d.ListHosts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]model.Host{}
		for _, h := range hosts {
			byName[h.Name] = h
		}
		if h := byName["c1"]; !h.FreeKnown || h.Free != (model.Resources{VCPUs: 54, MemoryMB: 3072, DiskGB: 80}) || !h.FreeAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("c1: %+v, want 54 vCPU, 3072 MB, 80 GB free, read at the first listing", h)
		}
		if h := byName["c2"]; !h.FreeKnown || !h.Free.Zero() {
			t.Fatalf("c2 (not a candidate: full): %+v, want known and nothing free", h)
		}
		if h := byName["c3"]; h.FreeKnown {
			t.Fatalf("c3 (no resource provider): %+v, want unknown", h)
		}
		now = now.Add(5 * time.Second)
	}
	if c := d.Calls(); c["placement-free"] != 1 || c["placement-providers"] != 1 {
		t.Fatalf("calls %v: want one Placement read for three listings within the interval", c)
	}
	now = now.Add(15 * time.Second)
	if _, err := d.ListHosts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := d.Calls(); c["placement-free"] != 2 {
		t.Fatalf("calls %v: want a second read once the interval passed", c)
	}
}
