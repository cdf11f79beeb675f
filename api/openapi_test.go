package api_test

// The spec test (issue 17, criterion 2): api/openapi.yaml lists every route the
// handler serves and nothing else (TestSpecListsEveryRoute), every request and
// answer of every API test is validated against it (validated, which the test rigs
// wrap their handler in), and every example answer in it is produced by a request
// (TestSpecExamplesAreProduced).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/model"
)

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadSpec loads and checks api/openapi.yaml (the embedded copy the server serves).
func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(api.Spec)
		if err != nil {
			spec.err = fmt.Errorf("load api/openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
			spec.err = fmt.Errorf("api/openapi.yaml is not a valid OpenAPI 3 document: %w", err)
			return
		}
		spec.doc = doc
		spec.router, spec.err = gorillamux.NewRouter(doc)
	})
	if spec.err != nil {
		t.Fatal(spec.err)
	}
	return spec.doc, spec.router
}

// validated checks every request h serves and its answer against the spec: an
// answer the spec does not describe (status, body) fails t, and so does a request
// the spec refuses that h accepts (2xx). Requests to routes the spec lacks are left
// to TestSpecListsEveryRoute (a test may probe an unknown path on purpose).
func validated(t testing.TB, h http.Handler) http.Handler {
	_, router := loadSpec(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		check := r.Clone(r.Context())
		check.Body = io.NopCloser(bytes.NewReader(body))
		if check.URL.Host == "" {
			check.URL.Host, check.URL.Scheme = r.Host, "http"
		}
		route, params, err := router.FindRoute(check)
		if err != nil {
			h.ServeHTTP(w, r)
			return
		}
		opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
		in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
		reqErr := openapi3filter.ValidateRequest(r.Context(), in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		what := fmt.Sprintf("%s %s %s", r.Method, r.URL.RequestURI(), body)
		if reqErr != nil && rec.Code < 400 {
			t.Errorf("the spec refuses the request %s (%v), yet the server answered %d %s", what, reqErr, rec.Code, rec.Body)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Options: opts}
		out.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
			t.Errorf("the answer to %s is not as the spec says: %v\nanswer: %d %s", what, err, rec.Code, rec.Body)
		}
	})
}

// allOptions is every api.Option, for the route walk: a feature that adds one adds
// it here too.
func allOptions() []api.Option {
	return []api.Option{api.WithMasakari(api.NewMasakari(api.MasakariConfig{}))}
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// TestSpecListsEveryRoute: every method and path the handler serves is in the spec,
// and every one the spec lists is served. A route registered for every method
// (chi's Handle) serves the methods its handler does not refuse with 405.
func TestSpecListsEveryRoute(t *testing.T) {
	doc, _ := loadSpec(t)
	r := newRig(t)
	h := api.Handler(r.eng, r.db, slog.New(slog.DiscardHandler), allOptions()...)
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("api.Handler returned a %T, not a chi router: the walk cannot list its routes", h)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	norm := func(p string) string { return pathParam.ReplaceAllString(p, "{}") }
	byPath := map[string][]string{}
	_ = chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		byPath[route] = append(byPath[route], method)
		return nil
	})
	served := map[string]bool{}
	for route, methods := range byPath {
		catchAll := len(methods) >= 9 // chi's Handle: every method it knows
		for _, m := range methods {
			if catchAll && !answers(t, srv.URL, m, route) {
				continue
			}
			served[m+" "+norm(route)] = true
		}
	}
	inSpec := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			inSpec[m+" "+norm(p)] = true
		}
	}
	var missing, extra []string
	for k := range served {
		if !inSpec[k] {
			missing = append(missing, k)
		}
	}
	for k := range inSpec {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("served but not in api/openapi.yaml (add them to the spec):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("in api/openapi.yaml but not served (remove them or serve them):\n  %s", strings.Join(extra, "\n  "))
	}
	if len(served) < 20 {
		t.Fatalf("the walk found only %d routes: %v", len(served), served)
	}
}

// answers says whether the route's handler serves method (anything but 405).
func answers(t *testing.T, base, method, route string) bool {
	req, _ := http.NewRequest(method, base+pathParam.ReplaceAllString(route, "x"), strings.NewReader(""))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusMethodNotAllowed
}

// The spec is served, and is the file in the repository.
func TestSpecIsServed(t *testing.T) {
	r := newRig(t)
	resp, err := http.Get(r.srv.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") || !bytes.Equal(body, api.Spec) {
		t.Fatalf("GET /v1/openapi.yaml: %d %s, %d bytes; want 200 application/yaml with api/openapi.yaml", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if _, err := openapi3.NewLoader().LoadFromData(body); err != nil {
		t.Fatalf("the served spec does not load: %v", err)
	}
}

// volatile are the fields an example shows with a value a run cannot reproduce
// (times, the replica's hostname:PID, counters of the engine's loop, random
// UUIDs, the server's address): compared by JSON type only. Every other field is
// compared by value, and every object must have the example's keys exactly.
var volatile = map[string]bool{
	"at": true, "since": true, "renewed": true, "opened": true, "updated": true, "closed": true,
	"planned": true, "started": true, "issued": true, "finished": true, "deadline": true,
	"last_seen_up": true, "last_full_listing": true, "created_at": true,
	"replica": true, "holder": true, "version": true, "ticks": true,
	"notification_uuid": true, "href": true,
}

// producers perform, on a fresh rig, the request whose answer is the example of
// "METHOD PATH STATUS" (an operation's) or "#/components/responses/NAME" (a shared
// answer's).
var producers = map[string]func(r *rig) (int, []byte){
	"GET /healthz 200":            get("/healthz"),
	"GET /readyz 200":             ticked(get("/readyz")),
	"GET /v1/leadership 200":      ticked(get("/v1/leadership")),
	"GET /v1/cloud 200":           get("/v1/cloud"),
	"GET /v1/policies 200":        get("/v1/policies"),
	"GET /v1/clusters 200":        withWeb(get("/v1/clusters")),
	"GET /v1/clusters/{name} 200": withWeb(get("/v1/clusters/web")),
	"POST /v1/clusters 201": func(r *rig) (int, []byte) {
		return r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["srv-00001","srv-00002"],"desired":2}`)
	},
	"PATCH /v1/clusters/{name} 200": withWeb(func(r *rig) (int, []byte) {
		return r.call(http.MethodPatch, "/v1/clusters/web", `{"add":["srv-00003"],"remove":["srv-00002"]}`)
	}),
	"GET /v1/hosts 200":   get("/v1/hosts?limit=1&marker=host-1"),
	"GET /v1/servers 200": get("/v1/servers?limit=1"),
	"POST /v1/hosts/{name}/maintenance 200": func(r *rig) (int, []byte) {
		return r.call(http.MethodPost, "/v1/hosts/host-2/maintenance", `{"on":true,"reason":"firmware"}`)
	},
	"POST /v1/hosts/{name}/return 200": func(r *rig) (int, []byte) {
		r.call(http.MethodPost, "/v1/clusters", `{"name":"db","members":["srv-00003"]}`)
		r.tick()
		return r.call(http.MethodPost, "/v1/hosts/host-2/return", "")
	},
	"POST /v1/hosts/{name}/drain 202": func(r *rig) (int, []byte) {
		r.call(http.MethodPost, "/v1/clusters", `{"name":"db","members":["srv-00005"]}`)
		r.tick()
		return r.call(http.MethodPost, "/v1/hosts/host-3/drain", "")
	},
	"GET /v1/incidents 200": withWeb(func(r *rig) (int, []byte) {
		_ = r.cloud.KillHost("host-1")
		for range 40 {
			r.tick()
		}
		return r.call(http.MethodGet, "/v1/incidents", "")
	}),
	"GET /v1/events 200":                      withWeb(get("/v1/events?after=1&limit=1")),
	"GET /v1/ 200":                            get("/v1/"),
	"POST /v1/notifications 202":              notify("/v1/notifications"),
	"POST /v1/notifications 400":              badNotification("/v1/notifications"),
	"POST /v1/{project_id}/notifications 202": notify("/v1/abc/notifications"),
	"POST /v1/{project_id}/notifications 400": badNotification("/v1/abc/notifications"),
	"#/components/responses/BadRequest":       get("/v1/incidents?sate=open"),
	"#/components/responses/NotFound":         get("/v1/clusters/nope"),
	"#/components/responses/Conflict": func(r *rig) (int, []byte) {
		r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["srv-00001"]}`)
		return r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["srv-00003"]}`)
	},
}

func notify(path string) func(r *rig) (int, []byte) {
	return func(r *rig) (int, []byte) {
		return r.call(http.MethodPost, path, notificationJSON("COMPUTE_HOST", "compute-1", "2026-11-24T16:06:42.123456",
			map[string]string{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}))
	}
}

func badNotification(path string) func(r *rig) (int, []byte) {
	return func(r *rig) (int, []byte) {
		return r.call(http.MethodPost, path, notificationJSON("HOST", "compute-1", "2026-11-24T16:06:42.123456", map[string]string{"event": "STOPPED"}))
	}
}

// ticked lets the engine run a few rounds first (its lease read back).
func ticked(f func(r *rig) (int, []byte)) func(r *rig) (int, []byte) {
	return func(r *rig) (int, []byte) {
		for range 3 {
			r.tick()
		}
		return f(r)
	}
}

func get(path string) func(r *rig) (int, []byte) {
	return func(r *rig) (int, []byte) { return r.call(http.MethodGet, path, "") }
}

// withWeb first creates cluster web of the first two servers (srv-00001 and
// srv-00002, on host-1) and lets the engine see it.
func withWeb(f func(r *rig) (int, []byte)) func(r *rig) (int, []byte) {
	return func(r *rig) (int, []byte) {
		if code, body := r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["srv-00001","srv-00002"]}`); code != http.StatusCreated {
			r.t.Fatalf("create cluster web: %d %s", code, body)
		}
		r.tick()
		return f(r)
	}
}

// TestSpecExamplesAreProduced: every example answer in the spec is what a request
// gets (see volatile for the fields compared by type only).
func TestSpecExamplesAreProduced(t *testing.T) {
	doc, _ := loadSpec(t)
	examples := map[string]any{}
	for name, ref := range doc.Components.Responses {
		if ex := jsonExample(ref.Value); ex != nil {
			examples["#/components/responses/"+name] = ex
		}
	}
	for p, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				if ref.Ref != "" {
					continue // a shared answer, produced once above
				}
				if ex := jsonExample(ref.Value); ex != nil {
					examples[fmt.Sprintf("%s %s %s", m, p, code)] = ex
				}
			}
		}
	}
	for key := range producers {
		if _, ok := examples[key]; !ok {
			t.Errorf("producer %q has no example in the spec", key)
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range examples {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			produce, ok := producers[key]
			if !ok {
				t.Fatalf("no test produces the example answer of %s: add a producer", key)
			}
			r := newRig(t)
			code, body := produce(r)
			if want := wantCode(key); want != 0 && code != want {
				t.Fatalf("got %d %s, want %d", code, body, want)
			}
			var got any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer %s is not JSON: %v", body, err)
			}
			for _, d := range differences("", examples[key], got) {
				t.Error(d)
			}
			if t.Failed() {
				t.Logf("the answer:\n%s", body)
			}
		})
	}
}

// wantCode is the status an operation example's key names (0 for a shared answer).
func wantCode(key string) int {
	var code int
	if f := strings.Fields(key); len(f) == 3 {
		fmt.Sscan(f[2], &code)
	}
	return code
}

func jsonExample(resp *openapi3.Response) any {
	if resp == nil {
		return nil
	}
	if mt := resp.Content.Get("application/json"); mt != nil {
		return mt.Example
	}
	return nil
}

// differences lists where got differs from the example want.
func differences(at string, want, got any) []string {
	key := at[strings.LastIndex(at, ".")+1:]
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want an object", at, got)}
		}
		var out []string
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: in the answer (%v), not in the example", at, k, g[k]))
			}
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: in the example, not in the answer", at, k))
				continue
			}
			out = append(out, differences(at+"."+k, v, gv)...)
		}
		sort.Strings(out)
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %d items", at, got, len(w))}
		}
		var out []string
		for i := range w {
			out = append(out, differences(fmt.Sprintf("%s[%d]", at, i), w[i], g[i])...)
		}
		return out
	}
	if volatile[key] {
		if fmt.Sprintf("%T", normNumber(want)) != fmt.Sprintf("%T", normNumber(got)) {
			return []string{fmt.Sprintf("%s: got %v (%T), want a %T like %v", at, got, got, want, want)}
		}
		return nil
	}
	if fmt.Sprint(normNumber(want)) != fmt.Sprint(normNumber(got)) || (want == nil) != (got == nil) {
		return []string{fmt.Sprintf("%s: got %#v, want %#v", at, got, want)}
	}
	return nil
}

// normNumber makes the spec's YAML integers and the answer's JSON numbers compare.
func normNumber(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case uint64:
		return float64(n)
	}
	return v
}

var _ = model.Green
