package vigil

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud/sim"
)

// Secrets of the walk's Vigil: none may appear in a log line or a response.
const (
	walkBMCPassword = "bmc-Secret-pw-7431"
	walkMasakari    = "masakari-Secret-token-0123456789"
	walkAgent       = "agent-Secret-token-0123456789"
	walkKeystone    = "keystone-Secret-admin-token"
	walkKeystoneMbr = "keystone-Secret-member-token"
)

// fakeKeystone knows two tokens: an admin's and a member's.
type fakeKeystone struct{}

func (fakeKeystone) ValidateToken(ctx context.Context, tok string) (api.KeystoneToken, error) {
	switch tok {
	case walkKeystone:
		return api.KeystoneToken{User: "admin", Roles: []string{"reader", "admin"}, Expires: time.Now().Add(time.Hour)}, nil
	case walkKeystoneMbr:
		return api.KeystoneToken{User: "demo", Roles: []string{"member", "reader"}, Expires: time.Now().Add(time.Hour)}, nil
	}
	return api.KeystoneToken{}, api.ErrInvalidToken
}

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWalkVigil runs a Vigil whose policy file holds a BMC password, a Masakari
// token and an agent token, with Keystone validation, logging to the returned buffer.
func startWalkVigil(t *testing.T, policy string, ks api.Keystone) (*App, *syncBuffer) {
	t.Helper()
	t.Setenv("TEST_WALK_BMC_PW", walkBMCPassword)
	t.Setenv("TEST_WALK_MASAKARI", walkMasakari)
	t.Setenv("TEST_WALK_AGENT", walkAgent)
	cfg, err := ParseConfig([]byte(`
fencing:
  hosts:
    - name: host-a
      ipmi: {address: 127.0.0.1, port: 9, username: admin, password_env: TEST_WALK_BMC_PW}
masakari: {tokens: [{token_env: TEST_WALK_MASAKARI}]}
agents: {interval: 1s, hosts: [{name: host-a, token_env: TEST_WALK_AGENT}]}
` + policy))
	if err != nil {
		t.Fatal(err)
	}
	cloud := sim.New(sim.DefaultConfig(), time.Now)
	for _, h := range []string{"host-a", "host-b"} {
		cloud.AddHost(h, "seg", 4)
		if _, err := cloud.CreateServer("vm-"+h, h); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "v.db"), Interval: time.Hour,
		Config: cfg, Compute: cloud, Fencer: cloud, Keystone: ks,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := app.Engine.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); app.Close() })
	return app, logs
}

// mutating are the methods that change something.
var mutating = map[string]bool{http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true}

// walkRoute is one route of the API's router, its pattern filled in.
type walkRoute struct{ method, pattern, path string }

// apiRoutes lists every route of app's API (chi.Walk: a route added later is
// walked too), with each {param} filled with a value that names something real.
func apiRoutes(t *testing.T, app *App) []walkRoute {
	t.Helper()
	routes, ok := app.api.(chi.Routes)
	if !ok {
		t.Fatalf("the API's handler is a %T, not a chi router", app.api)
	}
	params := regexp.MustCompile(`\{[^}]+\}`)
	fill := map[string]string{"{name}": "host-a", "{id}": "1", "{project_id}": "p1"}
	var out []walkRoute
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := params.ReplaceAllStringFunc(route, func(p string) string {
			if v, ok := fill[p]; ok {
				return v
			}
			return "x"
		})
		if strings.HasPrefix(route, "/v1/clusters/") {
			path = "/v1/clusters/walk"
		}
		if strings.HasPrefix(route, "/v1/tokens/") {
			path = "/v1/tokens/walk-made" // made by POST /v1/tokens, walked before
		}
		out = append(out, walkRoute{method, route, strings.TrimSuffix(path, "/*")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bodies: a plausible body per mutating route (a valid request must reach the
// route's own logic, not stop at a 400 for an empty body).
func walkBody(route walkRoute, ids []string) string {
	switch {
	case route.method == http.MethodPost && route.pattern == "/v1/clusters":
		return `{"name": "walk", "members": ["` + ids[0] + `"]}`
	case route.method == http.MethodPatch && strings.HasPrefix(route.pattern, "/v1/clusters/"):
		return `{"add": ["` + ids[1] + `"]}`
	case strings.HasSuffix(route.pattern, "/maintenance"):
		return `{"on": true, "reason": "walk"}`
	case route.pattern == "/v1/tokens":
		return `{"name": "walk-made"}`
	case strings.HasSuffix(route.pattern, "/notifications"):
		return `{"notification": {"type": "COMPUTE_HOST", "hostname": "host-b", "generated_time": "2026-01-01T00:00:00",` +
			` "payload": {"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "ONLINE"}}}`
	}
	return `{}`
}

// masakariRoute: Masakari's notifications take their own X-Auth-Token (masakari.go).
func masakariRoute(r walkRoute) bool { return strings.HasSuffix(r.pattern, "/notifications") }

func send(t *testing.T, base, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Criterion 3 of issue 17: every mutating route of the API, walked with no token
// (401 and a Bearer challenge), a wrong one (401), a revoked one (401), a Keystone
// member's (403) and a valid one (the route runs: 2xx or its own 4xx, never 401
// or 403); and no token, password or BMC secret in any log line or response.
func TestEveryMutatingRouteNeedsAToken(t *testing.T) {
	app, logs := startWalkVigil(t, "auth: {keystone: true}\n", fakeKeystone{})
	srv := httptest.NewServer(app.api)
	defer srv.Close()
	ctx := context.Background()
	valid, err := app.CreateToken(ctx, "walker")
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := app.CreateToken(ctx, "walk-victim")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	// The victim is revoked through the API, with the valid token.
	code, _, body := send(t, srv.URL, http.MethodDelete, "/v1/tokens/walk-victim", "", map[string]string{"Authorization": "Bearer " + valid})
	if code != http.StatusNoContent {
		t.Fatalf("revoke walk-victim: %d %s", code, body)
	}
	var ids []string
	for _, s := range app.Engine.Servers() {
		ids = append(ids, s.Server.ID)
	}
	walked := 0
	for _, r := range apiRoutes(t, app) {
		if !mutating[r.method] {
			continue
		}
		walked++
		name := r.method + " " + r.pattern
		b := walkBody(r, ids)
		bad := []struct {
			what string
			hdr  map[string]string
			want int
		}{
			{"no token", nil, http.StatusUnauthorized},
			{"a wrong token", map[string]string{"Authorization": "Bearer vgl_wrong"}, http.StatusUnauthorized},
			{"a revoked token", map[string]string{"Authorization": "Bearer " + revoked}, http.StatusUnauthorized},
			{"a malformed Authorization", map[string]string{"Authorization": valid}, http.StatusUnauthorized},
			{"an unknown Keystone token", map[string]string{"X-Auth-Token": "garbage"}, http.StatusUnauthorized},
			{"a Keystone member's token", map[string]string{"X-Auth-Token": walkKeystoneMbr}, http.StatusForbidden},
		}
		if masakariRoute(r) {
			// Its own check: any X-Auth-Token but masakari-monitors' is a 401.
			bad = bad[:4]
			bad = append(bad, struct {
				what string
				hdr  map[string]string
				want int
			}{"a Keystone admin's token (not Masakari's)", map[string]string{"X-Auth-Token": walkKeystone}, http.StatusUnauthorized})
		}
		for _, c := range bad {
			code, hdr, body := send(t, srv.URL, r.method, r.path, b, c.hdr)
			bodies = append(bodies, body)
			if code != c.want {
				t.Errorf("%s (%s) with %s: %d %s, want %d", name, r.path, c.what, code, strings.TrimSpace(body), c.want)
			}
			if code == http.StatusUnauthorized && !strings.Contains(hdr.Get("WWW-Authenticate"), "realm=") {
				t.Errorf("%s with %s: 401 without a WWW-Authenticate challenge", name, c.what)
			}
			if c.hdr == nil && !masakariRoute(r) && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with no token: WWW-Authenticate %q, want Bearer", name, hdr.Get("WWW-Authenticate"))
			}
		}
		goods := []map[string]string{{"Authorization": "Bearer " + valid}, {"X-Auth-Token": walkKeystone}}
		if masakariRoute(r) {
			goods = []map[string]string{{"X-Auth-Token": walkMasakari}}
		}
		for _, hdr := range goods {
			code, _, body := send(t, srv.URL, r.method, r.path, b, hdr)
			bodies = append(bodies, body)
			if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
				t.Errorf("%s (%s) with a valid credential: %d %s, want the route's own answer", name, r.path, code, strings.TrimSpace(body))
			}
			t.Logf("%s %s: %d", r.method, r.path, code)
		}
	}
	if walked < 10 {
		t.Fatalf("walked %d mutating routes: the walk missed the API's routes", walked)
	}

	// Reads need a token too (auth.open_reads is off); health and readiness do not.
	for _, p := range []string{"/v1/clusters", "/v1/hosts", "/v1/incidents", "/v1/tokens"} {
		if code, _, body := send(t, srv.URL, http.MethodGet, p, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %s, want 401", p, code, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, _ := send(t, srv.URL, http.MethodGet, p, "", nil); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", p, code)
		}
	}
	// A path that looks like Masakari's but is a cluster's route is not open.
	if code, _, _ := send(t, srv.URL, http.MethodDelete, "/v1/clusters/notifications", "", nil); code != http.StatusUnauthorized {
		t.Errorf("DELETE /v1/clusters/notifications without a token: %d, want 401", code)
	}

	// The token list shows names, never tokens or hashes.
	code, _, list := send(t, srv.URL, http.MethodGet, "/v1/tokens", "", map[string]string{"Authorization": "Bearer " + valid})
	if code != http.StatusOK || !strings.Contains(list, `"walker"`) || !strings.Contains(list, `"revoked"`) {
		t.Errorf("GET /v1/tokens: %d %s", code, list)
	}
	bodies = append(bodies, list)
	secrets := []string{valid, revoked, api.HashToken(valid), api.HashToken(revoked), walkBMCPassword, walkMasakari, walkAgent,
		walkKeystone, walkKeystoneMbr}
	all := strings.Join(bodies, "\n")
	log := logs.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a response holds the secret %.12s...", s)
		}
		if strings.Contains(log, s) {
			t.Errorf("the log holds the secret %.12s...", s)
		}
	}
	// The tokens made through the API during the walk are shown only in their
	// creation's answer: never logged.
	for _, m := range regexp.MustCompile(api.TokenPrefix+`[A-Za-z0-9_-]{43}`).FindAllString(all, -1) {
		if strings.Contains(log, m) {
			t.Errorf("the log holds a token made during the walk")
		}
	}
	if !strings.Contains(log, "api request refused") {
		t.Error("refusals are not logged")
	}
}
