package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/metrics"
)

// An HTTP path becomes a template: IDs, projects, stack names and hosts never
// reach a label (one series per kind of call, whatever the cloud holds).
func TestPathTemplateKeepsOnlyTheAPIsWords(t *testing.T) {
	for path, want := range map[string]string{
		"/v2.1/servers/detail": "/v2.1/servers/detail",
		"/v2.1/servers/9f3c2b9e-51e4-4d35-a0a4-6c2b1c1c0f11/action":              "/v2.1/servers/{id}/action",
		"/compute/v2.1/os-services/0b2f7c2a-0000-4000-8000-000000000001":         "/compute/v2.1/os-services/{id}",
		"/v2.1/servers/9f3c2b9e-51e4-4d35-a0a4-6c2b1c1c0f11/os-instance-actions": "/v2.1/servers/{id}/os-instance-actions",
		"/v3/auth/tokens": "/v3/auth/tokens",
		"/v1/4f0e1c3a8b9d4e2f9a7b6c5d4e3f2a1b/stacks/web-tier/b7c1e2d3/resources": "/v1/{id}/stacks/{id}/{id}/resources",
		"/resource_providers/6a8d1c2e-aaaa-bbbb-cccc-123456789012/usages":         "/resource_providers/{id}/usages",
		"/v2.1/os-hypervisors/compute-17.example.org":                             "/v2.1/os-hypervisors/{id}",
	} {
		if got := metrics.PathTemplate(path); got != want {
			t.Errorf("PathTemplate(%q) = %q, want %q", path, got, want)
		}
	}
}

// The driver's transport counts each call by method, template and status, never
// by its URL or query.
func TestTransportCountsByTemplateAndStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/action") {
			w.WriteHeader(http.StatusConflict)
		}
	}))
	defer srv.Close()
	m := metrics.New(metrics.Config{})
	client := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	for _, u := range []string{"/v2.1/servers/detail?changes-since=2026-01-01T00:00:00Z", "/v2.1/servers/aaaa-1/action", "/v2.1/servers/bbbb-2/action"} {
		method := http.MethodGet
		if strings.HasSuffix(u, "action") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, srv.URL+u, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	bad, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/v2.1/os-hypervisors/detail", nil)
	if _, err := client.Do(bad); err == nil {
		t.Fatal("a request to a closed port answered")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := rec.Body.String()
	for series, want := range map[string]float64{
		`vigil_cloud_api_calls_total{endpoint="/v2.1/servers/detail",method="GET",status="200"}`:          1,
		`vigil_cloud_api_calls_total{endpoint="/v2.1/servers/{id}/action",method="POST",status="409"}`:    2,
		`vigil_cloud_api_calls_total{endpoint="/v2.1/os-hypervisors/detail",method="GET",status="error"}`: 1,
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, "changes-since") || strings.Contains(text, "aaaa-1") {
		t.Errorf("a URL's query or ID reached a label:\n%s", text)
	}
}
