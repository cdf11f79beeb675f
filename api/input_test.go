package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
)

// send is call with the caller's Content-Type (none when ct is "").
func (r *rig) send(method, path, ct string, body io.Reader) (int, http.Header, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.srv.URL+path, body)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func wantError(t *testing.T, code int, body []byte, wantCode int, field, msg string) {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil || code != wantCode || e.Field != field || !strings.Contains(e.Error, msg) {
		t.Fatalf("got %d %s, want %d naming field %q with %q", code, body, wantCode, field, msg)
	}
}

// Every way a request body was wrongly accepted is a 400 naming the field, and
// nothing is created.
func TestBodyIsOneStrictJSONDocument(t *testing.T) {
	r := newRig(t)
	m := fmt.Sprintf("[%q]", r.ids[0])
	cases := []struct{ name, body, field, msg string }{
		{"name with a slash", `{"name":"a/b","members":` + m + `}`, "name", "want 1 to 64 characters"},
		{"name with a query", `{"name":"q?x=1","members":` + m + `}`, "name", `'?'`},
		{"name with a newline", `{"name":"web\nok","members":` + m + `}`, "name", `'\n'`},
		{"name with an escape sequence", `{"name":"\u001b[2Jweb","members":` + m + `}`, "name", `'\x1b'`},
		{"name too long", `{"name":"` + strings.Repeat("a", 65) + `","members":` + m + `}`, "name", "65 bytes"},
		{"name dot-dot", `{"name":"..","members":` + m + `}`, "name", "path step"},
		{"trailing brace", `{"name":"db","members":` + m + `}}`, "body", "trailing data"},
		{"second document", `{"name":"db","members":` + m + `} {}`, "body", "exactly one JSON document"},
		{"duplicate key", `{"name":"db","members":` + m + `,"name":"other"}`, "name", "given twice"},
		{"duplicate nested key", `{"name":"db","source":{"kind":"metadata","ref":"a","ref":"b"}}`, "source.ref", "given twice"},
		{"key in another case", `{"NAME":"db","members":` + m + `}`, "NAME", `did you mean "name"`},
		{"nested key in another case", `{"name":"db","source":{"Kind":"metadata","ref":"a"}}`, "source.Kind", `did you mean "kind"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := r.call(http.MethodPost, "/v1/clusters", c.body)
			wantError(t, code, body, http.StatusBadRequest, c.field, c.msg)
		})
	}
	if cl, _ := r.db.Clusters(t.Context()); len(cl) != 0 {
		t.Fatalf("refused requests created clusters: %+v", cl)
	}
	// A valid name of every allowed character is taken.
	if code, body := r.call(http.MethodPost, "/v1/clusters", `{"name":"Web_1.a-Z","members":`+m+`}`); code != http.StatusCreated {
		t.Fatalf("valid name: %d %s", code, body)
	}
}

func TestBodyOverOneMiBIs413AndWrongContentTypeIs415(t *testing.T) {
	r := newRig(t)
	big := `{"name":"db","members":["` + strings.Repeat("x", 2<<20) + `"]}`
	code, _, body := r.send(http.MethodPost, "/v1/clusters", "application/json", strings.NewReader(big))
	wantError(t, code, body, http.StatusRequestEntityTooLarge, "body", "at most 1048576 bytes")
	// Without a Content-Length (chunked), the limit holds while reading.
	code, _, body = r.send(http.MethodPost, "/v1/clusters", "application/json", io.MultiReader(strings.NewReader(big)))
	wantError(t, code, body, http.StatusRequestEntityTooLarge, "body", "at most 1048576 bytes")

	ok := fmt.Sprintf(`{"name":"db","members":[%q]}`, r.ids[0])
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"} {
		code, _, body = r.send(http.MethodPost, "/v1/clusters", ct, strings.NewReader(ok))
		wantError(t, code, body, http.StatusUnsupportedMediaType, "body", "must be")
	}
	code, _, body = r.send(http.MethodPost, "/v1/clusters", "application/json; charset=utf-8", strings.NewReader(ok))
	if code != http.StatusCreated {
		t.Fatalf("application/json; charset=utf-8: %d %s", code, body)
	}
}

func TestHeadOnEveryGetRouteAndAllowOn405(t *testing.T) {
	r := newRig(t)
	for _, path := range []string{"/healthz", "/readyz", "/v1/clusters", "/v1/hosts", "/v1/policies", "/v1/incidents", "/v1/events"} {
		code, hdr, body := r.send(http.MethodHead, path, "", nil)
		if code != http.StatusOK || len(body) != 0 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("HEAD %s: %d %q %v, want 200 with headers and no body", path, code, body, hdr)
		}
	}
	cases := []struct{ method, path, allow string }{
		{http.MethodDelete, "/healthz", "GET, HEAD"},
		{http.MethodPut, "/v1/clusters", "GET, HEAD, POST"},
		{http.MethodPost, "/v1/clusters/web", "GET, HEAD, PATCH, DELETE"},
		{http.MethodGet, "/v1/hosts/host-1/return", "POST"},
	}
	for _, c := range cases {
		code, hdr, body := r.send(c.method, c.path, "", nil)
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != c.allow || !strings.Contains(string(body), c.allow) {
			t.Fatalf("%s %s: %d Allow %q %s, want 405 with Allow %q", c.method, c.path, code, hdr.Get("Allow"), body, c.allow)
		}
	}
}

func TestUnknownQueryParameterIs400NamingIt(t *testing.T) {
	r := newRig(t)
	cases := []struct{ path, field, msg string }{
		{"/v1/clusters?state=open", "state", "this route takes limit, marker, health, policy"},
		{"/v1/incidents?limit=5&segment=a", "segment", "this route takes limit, marker, state, cluster, host"},
		{"/v1/cloud?verbose=1", "verbose", "this route takes none"},
		{"/v1/events?after=0&limit=1&limit=2", "limit", "more than once"},
		{"/healthz?verbose=1", "verbose", "unknown query parameter"},
		{"/v1/clusters/web?x=1", "x", "unknown query parameter"},
	}
	for _, c := range cases {
		code, body := r.call(http.MethodGet, c.path, "")
		wantError(t, code, body, http.StatusBadRequest, c.field, c.msg)
	}
	code, _, body := r.send(http.MethodHead, "/v1/hosts?x=1", "", nil)
	if code != http.StatusBadRequest || len(body) != 0 {
		t.Fatalf("HEAD with an unknown parameter: %d, want 400", code)
	}
	for _, path := range []string{"/v1/incidents?limit=5", "/v1/events?after=0&limit=1", "/v1/clusters"} {
		if code, body := r.call(http.MethodGet, path, ""); code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
}

// /v1/policies writes durations as a policy file does, not in nanoseconds.
func TestPoliciesShowDurationsAsWritten(t *testing.T) {
	r := newRig(t)
	code, body := r.call(http.MethodGet, "/v1/policies", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/policies: %d %s", code, body)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	def := got["default"]
	for key, want := range map[string]time.Duration{"step_timeout": time.Minute, "host_down_grace": 10 * time.Second, "deadline": 10 * time.Minute} {
		s, ok := def[key].(string)
		d, err := time.ParseDuration(s)
		if !ok || err != nil || d != want {
			t.Errorf("%s: %#v, want a duration string meaning %s", key, def[key], want)
		}
	}
	if def["step_timeout"] != "1m" || def["name"] != "default" || def["max_attempts"] != float64(8) {
		t.Errorf("default policy: %s", body)
	}
	if bytes.Contains(body, []byte("60000000000")) {
		t.Errorf("a duration in nanoseconds: %s", body)
	}
}
