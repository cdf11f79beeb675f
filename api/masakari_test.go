package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/model"
)

// masakariRig is the notifications endpoint on a loopback server, with the
// observations it emitted.
type masakariRig struct {
	t   *testing.T
	now time.Time
	srv *httptest.Server
	log bytes.Buffer

	mu  sync.Mutex
	obs []model.Observation
}

func newMasakariRig(t *testing.T, tokens ...string) *masakariRig {
	g := &masakariRig{t: t, now: time.Date(2026, 11, 24, 16, 6, 43, 0, time.UTC)}
	m := api.NewMasakari(api.MasakariConfig{
		Observe: func(o model.Observation) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.obs = append(g.obs, o)
		},
		Now:    func() time.Time { return g.now },
		Tokens: tokens,
		Log:    slog.New(slog.NewTextHandler(&g.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	r := chi.NewRouter()
	r.Route("/v1", m.Routes)
	g.srv = httptest.NewServer(validated(t, r))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *masakariRig) observations() []model.Observation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]model.Observation(nil), g.obs...)
}

// post sends body and returns the status and the decoded answer.
func (g *masakariRig) post(path, body string, header ...string) (int, map[string]any, http.Header) {
	return g.do(http.MethodPost, path, body, header...)
}

func (g *masakariRig) do(method, path, body string, header ...string) (int, map[string]any, http.Header) {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		g.t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, data)
	}
	return resp.StatusCode, out, resp.Header
}

func notificationJSON(typ, host, generated string, payload map[string]string) string {
	b, _ := json.Marshal(map[string]any{"notification": map[string]any{
		"type": typ, "hostname": host, "generated_time": generated, "payload": payload}})
	return string(b)
}

// valid are notifications Masakari 14 accepts: what each monitor sends, and the
// request samples of Masakari's API reference that its schema accepts.
var valid = []struct {
	name, body string
	// the observation's report, except ID and At
	want model.MonitorReport
}{
	{"hostmonitor: pacemaker node offline",
		notificationJSON("COMPUTE_HOST", "fake-compute-1", "2026-11-24T16:06:42.123456", map[string]string{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}),
		model.MonitorReport{Type: "COMPUTE_HOST", Host: "fake-compute-1", Event: "STOPPED",
			Payload: map[string]string{"host_status": "NORMAL", "cluster_status": "OFFLINE"}, Generated: time.Date(2026, 11, 24, 16, 6, 42, 123456000, time.UTC)}},
	{"hostmonitor: node back",
		notificationJSON("COMPUTE_HOST", "fake-compute-1", "2026-11-24T16:16:42.000001", map[string]string{"event": "STARTED", "host_status": "NORMAL", "cluster_status": "ONLINE"}),
		model.MonitorReport{Type: "COMPUTE_HOST", Host: "fake-compute-1", Event: "STARTED",
			Payload: map[string]string{"host_status": "NORMAL", "cluster_status": "ONLINE"}, Generated: time.Date(2026, 11, 24, 16, 16, 42, 1000, time.UTC)}},
	{"api-ref sample: host, space-separated time",
		`{"notification": {"type": "COMPUTE_HOST", "generated_time": "2017-04-24 08:34:46", "payload": {"event": "STOPPED", "host_status": "UNKNOWN", "cluster_status": "OFFLINE"}, "hostname": "openstack-VirtualBox"}}`,
		model.MonitorReport{Type: "COMPUTE_HOST", Host: "openstack-VirtualBox", Event: "STOPPED",
			Payload: map[string]string{"host_status": "UNKNOWN", "cluster_status": "OFFLINE"}, Generated: time.Date(2017, 4, 24, 8, 34, 46, 0, time.UTC)}},
	{"host event alone",
		notificationJSON("COMPUTE_HOST", "h1", "2026-11-24T16:06:42Z", map[string]string{"event": "STOPPED"}),
		model.MonitorReport{Type: "COMPUTE_HOST", Host: "h1", Event: "STOPPED", Generated: time.Date(2026, 11, 24, 16, 6, 42, 0, time.UTC)}},
	{"instancemonitor: qemu died",
		notificationJSON("VM", "compute-2", "2026-11-24T16:06:42.5+09:00", map[string]string{"event": "LIFECYCLE", "instance_uuid": "96ab1c42-668c-4f2d-8689-afa3301d4ee9", "vir_domain_event": "STOPPED_FAILED"}),
		model.MonitorReport{Type: "VM", Host: "compute-2", Server: "96ab1c42-668c-4f2d-8689-afa3301d4ee9", Event: "LIFECYCLE",
			Payload: map[string]string{"vir_domain_event": "STOPPED_FAILED"}, Generated: time.Date(2026, 11, 24, 7, 6, 42, 500000000, time.UTC)}},
	{"instancemonitor: guest agent, upper-case uuid without dashes",
		notificationJSON("VM", "compute-2", "20261124T160642", map[string]string{"event": "QEMU_GUEST_AGENT_ERROR", "instance_uuid": "96AB1C42668C4F2D8689AFA3301D4EE9", "vir_domain_event": "STOPPED_FAILED"}),
		model.MonitorReport{Type: "VM", Host: "compute-2", Server: "96ab1c42-668c-4f2d-8689-afa3301d4ee9", Event: "QEMU_GUEST_AGENT_ERROR",
			Payload: map[string]string{"vir_domain_event": "STOPPED_FAILED"}, Generated: time.Date(2026, 11, 24, 16, 6, 42, 0, time.UTC)}},
	{"api-ref sample: vm",
		`{"notification": {"type": "VM", "generated_time": "2017-04-23T07:18:51.523726", "payload": {"instance_uuid": "96ab1c42-668c-4f2d-8689-afa3301d4ee9", "vir_domain_event": "STOPPED_DESTROYED", "event": "LIFECYCLE"}, "hostname": "openstack-VirtualBox"}}`,
		model.MonitorReport{Type: "VM", Host: "openstack-VirtualBox", Server: "96ab1c42-668c-4f2d-8689-afa3301d4ee9", Event: "LIFECYCLE",
			Payload: map[string]string{"vir_domain_event": "STOPPED_DESTROYED"}, Generated: time.Date(2017, 4, 23, 7, 18, 51, 523726000, time.UTC)}},
	{"processmonitor: nova-compute died",
		notificationJSON("PROCESS", "compute-3", "2026-11-24", map[string]string{"event": "STOPPED", "process_name": "/usr/bin/nova-compute"}),
		model.MonitorReport{Type: "PROCESS", Host: "compute-3", Event: "STOPPED",
			Payload: map[string]string{"process_name": "/usr/bin/nova-compute"}, Generated: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}},
}

func TestMasakariNotificationBecomesObservation(t *testing.T) {
	for i, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			g := newMasakariRig(t)
			// Both URLs: with the project (keystone's catalog) and without (an override).
			path := []string{"/v1/notifications", "/v1/3f1c0e5bd1a84f0e8c1d2b7a9e6f4c21/notifications"}[i%2]
			code, body, _ := g.post(path, c.body)
			if code != http.StatusAccepted {
				t.Fatalf("POST %s: got %d %v, want 202", path, code, body)
			}
			obs := g.observations()
			if len(obs) != 1 || len(obs[0].Monitors) != 1 {
				t.Fatalf("want one observation of one report, got %+v", obs)
			}
			o := obs[0]
			if !o.At.Equal(g.now) || o.Source != "masakari" || o.Full || len(o.Servers) != 0 {
				t.Errorf("observation: got At %v Source %q Full %v, want At %v Source masakari, partial, no servers", o.At, o.Source, o.Full, g.now)
			}
			got := o.Monitors[0]
			n, _ := body["notification"].(map[string]any)
			if got.ID == "" || n["notification_uuid"] != got.ID {
				t.Errorf("the answer's notification_uuid %v is not the report's ID %q", n["notification_uuid"], got.ID)
			}
			if !got.At.Equal(g.now) || !got.Generated.Equal(c.want.Generated) {
				t.Errorf("times: got At %v Generated %v, want %v and %v", got.At, got.Generated, g.now, c.want.Generated)
			}
			got.ID, got.At, got.Generated = "", time.Time{}, c.want.Generated
			if !jsonEqual(got, c.want) {
				t.Errorf("report:\n got %s\nwant %s", mustJSON(got), mustJSON(c.want))
			}
			// What a monitor or masakariclient reads of the answer.
			if n["status"] != "new" || n["type"] != c.want.Type || n["generated_time"] != c.want.Generated.UTC().Format("2006-01-02T15:04:05.000000") ||
				n["created_at"] != "2026-11-24T16:06:43.000000" || n["deleted"] != false {
				t.Errorf("answer: got %v", n)
			}
			if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(str(n["source_host_uuid"])) {
				t.Errorf("source_host_uuid %v is not a name-based UUID", n["source_host_uuid"])
			}
			var sent map[string]map[string]any
			_ = json.Unmarshal([]byte(c.body), &sent)
			if !jsonEqual(n["payload"], sent["notification"]["payload"]) {
				t.Errorf("answer's payload %v, want the payload sent %v", n["payload"], sent["notification"]["payload"])
			}
		})
	}
}

// A host keeps its source_host_uuid from one notification to the next; another
// host has another.
func TestMasakariSourceHostUUIDIsStablePerHost(t *testing.T) {
	g := newMasakariRig(t)
	uuid := func(host string) any {
		_, b, _ := g.post("/v1/notifications", notificationJSON("COMPUTE_HOST", host, "2026-11-24T16:06:42", map[string]string{"event": "STOPPED"}))
		return b["notification"].(map[string]any)["source_host_uuid"]
	}
	a1, b, a2 := uuid("compute-a"), uuid("compute-b"), uuid("compute-a")
	if a1 != a2 || a1 == b {
		t.Errorf("source_host_uuid: compute-a %v then %v, compute-b %v; want compute-a's twice, compute-b's other", a1, a2, b)
	}
}

// Vigil does not mimic Masakari's 409 for a repeated notification: both are
// observed (a repeat changes nothing in a level-triggered detector; a 409 would
// hide a second failure within 180 s).
func TestMasakariRepeatedNotificationIsObservedAgain(t *testing.T) {
	g := newMasakariRig(t)
	body := valid[0].body
	c1, b1, _ := g.post("/v1/notifications", body)
	c2, b2, _ := g.post("/v1/notifications", body)
	if c1 != http.StatusAccepted || c2 != http.StatusAccepted {
		t.Fatalf("got %d then %d, want 202 twice", c1, c2)
	}
	if id1, id2 := b1["notification"].(map[string]any)["notification_uuid"], b2["notification"].(map[string]any)["notification_uuid"]; id1 == id2 {
		t.Errorf("both got notification_uuid %v", id1)
	}
	if n := len(g.observations()); n != 2 {
		t.Errorf("got %d observations, want 2", n)
	}
}

func hostBody(payload string) string {
	return `{"notification": {"type": "COMPUTE_HOST", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": ` + payload + `}}`
}

func vmBody(payload string) string {
	return `{"notification": {"type": "VM", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": ` + payload + `}}`
}

func processBody(payload string) string {
	return `{"notification": {"type": "PROCESS", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": ` + payload + `}}`
}

func withTime(gen string) string {
	return `{"notification": {"type": "COMPUTE_HOST", "hostname": "h1", "generated_time": ` + gen + `, "payload": {"event": "STOPPED"}}}`
}

func withHost(host string) string {
	return `{"notification": {"type": "COMPUTE_HOST", "hostname": ` + host + `, "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`
}

const uuid1 = `"96ab1c42-668c-4f2d-8689-afa3301d4ee9"`

// malformed are bodies Masakari 14 refuses with 400, and the field Vigil names.
var malformed = []struct{ name, body, field string }{
	{"not JSON", `{"notification": `, "body"},
	{"not UTF-8", "{\"notification\": {\"type\": \"VM\", \"hostname\": \"h\xff\"}}", "body"},
	{"trailing data", valid[0].body + ` {}`, "body"},
	{"empty body", ``, "body"},
	{"array", `[]`, "body"},
	{"null", `null`, "body"},
	{"no notification", `{}`, "notification"},
	{"extra top-level field", `{"notification": {}, "extra": 1}`, "extra"},
	{"notification not an object", `{"notification": "COMPUTE_HOST"}`, "notification"},
	{"no type", `{"notification": {"hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`, "notification.type"},
	{"no hostname", `{"notification": {"type": "VM", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`, "notification.hostname"},
	{"no generated_time", `{"notification": {"type": "VM", "hostname": "h1", "payload": {"event": "STOPPED"}}}`, "notification.generated_time"},
	{"no payload", `{"notification": {"type": "VM", "hostname": "h1", "generated_time": "2026-11-24T16:06:42"}}`, "notification.payload"},
	{"extra notification field", `{"notification": {"type": "COMPUTE_HOST", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}, "status": "new"}}`, "notification.status"},
	{"unknown type", `{"notification": {"type": "HOST", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`, "notification.type"},
	{"lower-case type", `{"notification": {"type": "vm", "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`, "notification.type"},
	{"type not a string", `{"notification": {"type": 1, "hostname": "h1", "generated_time": "2026-11-24T16:06:42", "payload": {"event": "STOPPED"}}}`, "notification.type"},
	{"empty hostname", withHost(`""`), "notification.hostname"},
	{"hostname with a space", withHost(`"compute 1"`), "notification.hostname"},
	{"hostname with a slash", withHost(`"compute/1"`), "notification.hostname"},
	{"hostname of 256 characters", withHost(`"` + strings.Repeat("h", 256) + `"`), "notification.hostname"},
	{"hostname not a string", withHost(`null`), "notification.hostname"},
	{"generated_time not a time", withTime(`"yesterday"`), "notification.generated_time"},
	{"generated_time month 13", withTime(`"2026-13-24T16:06:42"`), "notification.generated_time"},
	{"generated_time 30 February", withTime(`"2026-02-30T16:06:42"`), "notification.generated_time"},
	{"generated_time hour 25", withTime(`"2026-11-24T25:06:42"`), "notification.generated_time"},
	{"generated_time second 60", withTime(`"2026-11-24T16:06:60"`), "notification.generated_time"},
	{"generated_time lower-case t", withTime(`"2026-11-24t16:06:42"`), "notification.generated_time"},
	{"generated_time YYYYMM", withTime(`"202611"`), "notification.generated_time"},
	{"generated_time empty", withTime(`""`), "notification.generated_time"},
	{"generated_time a number", withTime(`1764000000`), "notification.generated_time"},
	{"payload not an object", hostBody(`"STOPPED"`), "notification.payload"},
	{"payload value not a string", hostBody(`{"event": "STOPPED", "host_status": 1}`), "notification.payload.host_status"},
	{"payload value of 256 characters", vmBody(`{"event": "LIFECYCLE", "instance_uuid": ` + uuid1 + `, "vir_domain_event": "` + strings.Repeat("x", 256) + `"}`), "notification.payload.vir_domain_event"},
	{"payload key with a slash", hostBody(`{"event": "STOPPED", "a/b": "x"}`), "notification.payload.a/b"},
	{"host: no event", hostBody(`{"host_status": "NORMAL"}`), "notification.payload.event"},
	{"host: lower-case event", hostBody(`{"event": "stopped"}`), "notification.payload.event"},
	{"host: event LIFECYCLE", hostBody(`{"event": "LIFECYCLE"}`), "notification.payload.event"},
	{"host: host_status OFFLINE", hostBody(`{"event": "STOPPED", "host_status": "OFFLINE"}`), "notification.payload.host_status"},
	{"host: cluster_status DOWN", hostBody(`{"event": "STOPPED", "cluster_status": "DOWN"}`), "notification.payload.cluster_status"},
	{"host: extra payload field", hostBody(`{"event": "STOPPED", "instance_uuid": ` + uuid1 + `}`), "notification.payload.instance_uuid"},
	{"vm: no instance_uuid", vmBody(`{"event": "LIFECYCLE", "vir_domain_event": "STOPPED_FAILED"}`), "notification.payload.instance_uuid"},
	{"vm: no vir_domain_event", vmBody(`{"event": "LIFECYCLE", "instance_uuid": ` + uuid1 + `}`), "notification.payload.vir_domain_event"},
	{"vm: no event", vmBody(`{"vir_domain_event": "STOPPED_FAILED", "instance_uuid": ` + uuid1 + `}`), "notification.payload.event"},
	{"vm: instance_uuid not a uuid", vmBody(`{"event": "LIFECYCLE", "instance_uuid": "vm-1", "vir_domain_event": "STOPPED_FAILED"}`), "notification.payload.instance_uuid"},
	{"vm: instance_uuid a digit short", vmBody(`{"event": "LIFECYCLE", "instance_uuid": "96ab1c42-668c-4f2d-8689-afa3301d4ee", "vir_domain_event": "STOPPED_FAILED"}`), "notification.payload.instance_uuid"},
	{"vm: empty event", vmBody(`{"event": "", "instance_uuid": ` + uuid1 + `, "vir_domain_event": "STOPPED_FAILED"}`), "notification.payload.event"},
	{"vm: empty vir_domain_event", vmBody(`{"event": "LIFECYCLE", "instance_uuid": ` + uuid1 + `, "vir_domain_event": ""}`), "notification.payload.vir_domain_event"},
	{"vm: extra payload field", vmBody(`{"event": "LIFECYCLE", "instance_uuid": ` + uuid1 + `, "vir_domain_event": "STOPPED_FAILED", "host_status": "NORMAL"}`), "notification.payload.host_status"},
	{"process: no process_name", processBody(`{"event": "STOPPED"}`), "notification.payload.process_name"},
	{"process: empty process_name", processBody(`{"event": "STOPPED", "process_name": ""}`), "notification.payload.process_name"},
	{"process: process_name of 256 characters", processBody(`{"event": "STOPPED", "process_name": "/` + strings.Repeat("p", 255) + `"}`), "notification.payload.process_name"},
	// Masakari's own API reference shows this sample; its schema refuses it.
	{"process: api-ref sample, lower-case event", `{"notification": {"type": "PROCESS", "generated_time": "2017-04-21 17:29:55", "payload": {"process_name": "nova-compute", "event": "stopped"}, "hostname": "openstack-VirtualBox"}}`, "notification.payload.event"},
	{"process: extra payload field", processBody(`{"event": "STOPPED", "process_name": "nova-compute", "pid": "42"}`), "notification.payload.pid"},
}

func TestMasakariMalformedGets400NamingTheField(t *testing.T) {
	for _, c := range malformed {
		t.Run(c.name, func(t *testing.T) {
			g := newMasakariRig(t)
			code, body, _ := g.post("/v1/notifications", c.body)
			if code != http.StatusBadRequest {
				t.Fatalf("got %d %v, want 400", code, body)
			}
			fault, _ := body["badRequest"].(map[string]any)
			if fault["code"] != float64(400) || fault["field"] != c.field {
				t.Errorf("got %v, want a badRequest fault naming %q", body, c.field)
			}
			if msg := str(fault["message"]); c.field != "body" && !strings.Contains(msg, c.field) {
				t.Errorf("message %q does not name %q", msg, c.field)
			}
			if n := len(g.observations()); n != 0 {
				t.Errorf("a refused notification made %d observations", n)
			}
		})
	}
}

// accepted are edge cases Masakari 14 accepts, beyond the monitors' shapes.
var accepted = []struct{ name, body string }{
	{"generated_time year only", withTime(`"2026"`)},
	{"generated_time year-month", withTime(`"2026-11"`)},
	{"generated_time hour only", withTime(`"2026-11-24T16"`)},
	{"generated_time comma fraction", withTime(`"2026-11-24T16:06:42,5"`)},
	{"generated_time nanoseconds", withTime(`"2026-11-24T16:06:42.123456789"`)},
	{"generated_time zone -0500", withTime(`"2026-11-24T16:06:42-0500"`)},
	{"generated_time zone +05", withTime(`"2026-11-24T16:06:42+05"`)},
	{"hostname with dots and underscores", withHost(`"compute_1.rack-2.example"`)},
	{"hostname of 255 characters", withHost(`"` + strings.Repeat("h", 255) + `"`)},
	{"vm: uuid in braces", vmBody(`{"event": "LIFECYCLE", "instance_uuid": "{96ab1c42-668c-4f2d-8689-afa3301d4ee9}", "vir_domain_event": "STOPPED_FAILED"}`)},
	{"vm: urn uuid", vmBody(`{"event": "LIFECYCLE", "instance_uuid": "urn:uuid:96ab1c42-668c-4f2d-8689-afa3301d4ee9", "vir_domain_event": "STOPPED_FAILED"}`)},
	{"vm: any event name", vmBody(`{"event": "IO_ERROR", "instance_uuid": ` + uuid1 + `, "vir_domain_event": "SUSPENDED_IOERROR"}`)},
	{"process: process_name of 255 characters", processBody(`{"event": "STARTED", "process_name": "/` + strings.Repeat("p", 254) + `"}`)},
	{"unicode hostname-free payload value", processBody(`{"event": "STARTED", "process_name": "nova-compute-é"}`)},
}

func TestMasakariAcceptsWhatMasakariAccepts(t *testing.T) {
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			g := newMasakariRig(t)
			if code, body, _ := g.post("/v1/notifications", c.body); code != http.StatusAccepted {
				t.Errorf("got %d %v, want 202", code, body)
			}
		})
	}
}

// masakariPython is Debian's python3 when Masakari's packages are importable
// (they are after ../shared/peers/masakari/up.sh --install-only).
func masakariPython(t *testing.T, modules string) string {
	t.Helper()
	const py = "/usr/bin/python3" // pyenv's python3 on PATH has none of Debian's modules
	cmd := exec.Command(py, "-c", "import "+modules)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("needs Debian's %s for %s (apt-get install python3-masakari python3-masakariclient, or ../shared/peers/masakari/up.sh --install-only): %v: %s",
			py, modules, err, strings.TrimSpace(lastLine(string(out))))
	}
	return py
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// Vigil's validation against Masakari's own (its schema files, run by its
// validator, no Masakari running): every body of the tables above gets the same
// verdict from both.
func TestMasakariValidationMatchesMasakarisSchema(t *testing.T) {
	py := masakariPython(t, masakariValidatorModules)
	var names, bodies []string
	var want []int
	for _, c := range valid {
		names, bodies, want = append(names, c.name), append(bodies, c.body), append(want, http.StatusAccepted)
	}
	for _, c := range accepted {
		names, bodies, want = append(names, c.name), append(bodies, c.body), append(want, http.StatusAccepted)
	}
	for _, c := range malformed {
		names, bodies, want = append(names, c.name), append(bodies, c.body), append(want, http.StatusBadRequest)
	}
	verdicts := masakariVerdicts(t, py, bodies)
	g := newMasakariRig(t)
	for i, m := range verdicts {
		code, body, _ := g.post("/v1/notifications", bodies[i])
		if m.Status != want[i] {
			t.Errorf("%s: Masakari says %d (%s), the table says %d: fix the table", names[i], m.Status, m.Detail, want[i])
		}
		if code != m.Status {
			t.Errorf("%s: Vigil says %d %v, Masakari %d (%s)", names[i], code, body, m.Status, m.Detail)
		}
	}
	if !t.Failed() {
		t.Logf("%d bodies, same verdict from Vigil and Masakari 14's schema", len(bodies))
	}
}

const masakariValidatorModules = "masakari.api.validation.validators, masakari.api.openstack.ha.schemas.notifications"

type masakariVerdict struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// masakariVerdicts judges bodies with Masakari's own validation (validate.py).
func masakariVerdicts(t *testing.T, py string, bodies []string) []masakariVerdict {
	t.Helper()
	var in bytes.Buffer
	for _, b := range bodies {
		in.WriteString(base64.StdEncoding.EncodeToString([]byte(b)) + "\n")
	}
	cmd := exec.Command(py, filepath.Join("..", "test", "masakari", "validate.py"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("validate.py: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(bodies) {
		t.Fatalf("validate.py judged %d bodies, want %d: %s", len(lines), len(bodies), out)
	}
	vs := make([]masakariVerdict, len(lines))
	for i, line := range lines {
		if err := json.Unmarshal([]byte(line), &vs[i]); err != nil {
			t.Fatalf("validate.py: %v: %s", err, line)
		}
	}
	return vs
}

// Generated bodies, mostly near-misses of valid ones (each field drawn from
// valid values and the ways monitors, people and bugs get them wrong), get the
// same verdict from Vigil and from Masakari's own validation.
// VIGIL_MASAKARI_BODIES=N judges N of them (default 600), VIGIL_MASAKARI_SEED
// picks another set.
func TestMasakariValidationMatchesMasakarisSchemaOnGeneratedBodies(t *testing.T) {
	py := masakariPython(t, masakariValidatorModules)
	n, seed := 600, uint64(14)
	if v, err := strconv.Atoi(os.Getenv("VIGIL_MASAKARI_BODIES")); err == nil {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("VIGIL_MASAKARI_SEED"), 10, 64); err == nil {
		seed = v
	}
	g0 := gen{rand.New(rand.NewPCG(seed, seed))}
	bodies := make([]string, n)
	for i := range bodies {
		b, _ := json.Marshal(g0.body())
		bodies[i] = string(b)
	}
	verdicts := masakariVerdicts(t, py, bodies)
	g := newMasakariRig(t)
	accepted, mismatches := 0, 0
	for i, m := range verdicts {
		code, body, _ := g.post("/v1/notifications", bodies[i])
		if code != m.Status {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("Vigil says %d %v, Masakari %d (%s) to\n%s", code, body, m.Status, m.Detail, bodies[i])
			}
		}
		if m.Status == http.StatusAccepted {
			accepted++
		}
	}
	t.Logf("seed %d: %d bodies (%d valid to Masakari), %d verdicts differ", seed, n, accepted, mismatches)
}

// gen draws near-misses: each field is valid most of the time.
type gen struct{ r *rand.Rand }

func (g gen) maybe(p float64) bool { return g.r.Float64() < p }

// either picks one of good (most often) or one of bad.
func (g gen) either(good, bad []any) any {
	if len(bad) == 0 || g.maybe(0.88) {
		return good[g.r.IntN(len(good))]
	}
	return bad[g.r.IntN(len(bad))]
}

func (g gen) one(vs ...string) string { return vs[g.r.IntN(len(vs))] }

// body draws a notification body.
func (g gen) body() any {
	typ := g.either([]any{"COMPUTE_HOST", "VM", "PROCESS"}, []any{"vm", "HOST", "", 1, nil})
	n := map[string]any{}
	if g.maybe(0.97) {
		n["type"] = typ
	}
	if g.maybe(0.97) {
		n["hostname"] = g.either([]any{"compute-1", "compute_1.rack-2", "h", strings.Repeat("h", 255)},
			[]any{"", "a b", "x/y", strings.Repeat("h", 256), "höst", 7, nil})
	}
	if g.maybe(0.97) {
		n["generated_time"] = g.time()
	}
	if g.maybe(0.97) {
		keys := map[any][]string{"COMPUTE_HOST": {"event", "host_status", "cluster_status"}, "VM": {"event", "instance_uuid", "vir_domain_event"},
			"PROCESS": {"event", "process_name"}}[typ]
		p := map[string]any{}
		for _, k := range keys {
			if g.maybe(0.95) {
				p[k] = g.value(typ, k)
			}
		}
		if g.maybe(0.06) {
			k := g.one("event", "host_status", "cluster_status", "instance_uuid", "vir_domain_event", "process_name", "foo", "a/b", "with space", strings.Repeat("k", 256))
			p[k] = g.value(typ, k)
		}
		n["payload"] = p
		if g.maybe(0.02) {
			n["payload"] = []any{"STOPPED", []any{}, nil}[g.r.IntN(3)]
		}
	}
	if g.maybe(0.02) {
		n["status"] = "new"
	}
	top := map[string]any{"notification": n}
	if g.maybe(0.02) {
		top["extra"] = 1
	}
	if g.maybe(0.01) {
		return n
	}
	return top
}

func (g gen) value(typ any, key string) any {
	switch key {
	case "event":
		if typ == "VM" {
			return g.either([]any{"LIFECYCLE", "QEMU_GUEST_AGENT_ERROR", "IO_ERROR", "STOPPED", "x"}, []any{"", 1, nil, strings.Repeat("e", 256)})
		}
		return g.either([]any{"STARTED", "STOPPED"}, []any{"stopped", "LIFECYCLE", "", 1, nil})
	case "host_status":
		return g.either([]any{"NORMAL", "UNKNOWN"}, []any{"OFFLINE", "normal", nil})
	case "cluster_status":
		return g.either([]any{"ONLINE", "OFFLINE"}, []any{"DOWN", true})
	case "instance_uuid":
		return g.either([]any{"96ab1c42-668c-4f2d-8689-afa3301d4ee9", "96AB1C42-668C-4F2D-8689-AFA3301D4EE9", "96ab1c42668c4f2d8689afa3301d4ee9",
			"{96ab1c42-668c-4f2d-8689-afa3301d4ee9}", "urn:uuid:96ab1c42-668c-4f2d-8689-afa3301d4ee9", "96ab-1c42668c-4f2d-8689-afa3301d4ee9"},
			[]any{"96ab1c42-668c-4f2d-8689-afa3301d4ee", "96ab1c42-668c-4f2d-8689-afa3301d4eeg", "vm-1", "", " 96ab1c42-668c-4f2d-8689-afa3301d4ee9", 3})
	case "vir_domain_event":
		return g.either([]any{"STOPPED_FAILED", "STOPPED_DESTROYED", "IO_ERROR_REPORT", strings.Repeat("e", 255)}, []any{"", strings.Repeat("e", 256), 0})
	case "process_name":
		return g.either([]any{"/usr/bin/nova-compute", "nova-compute", strings.Repeat("p", 255)}, []any{"", strings.Repeat("p", 256), strings.Repeat("p", 5000)})
	}
	return g.either([]any{"x"}, []any{"", 1})
}

// time draws a generated_time: ISO 8601 pieces, each sometimes wrong.
func (g gen) time() any {
	if g.maybe(0.03) {
		return []any{1764000000, nil, "", "yesterday"}[g.r.IntN(4)]
	}
	num := func(good, max int) string {
		if g.maybe(0.9) {
			return fmt.Sprintf("%02d", 1+g.r.IntN(good))
		}
		return fmt.Sprintf("%02d", g.r.IntN(max))
	}
	s := g.either([]any{"2026", "2024", "2025"}, []any{"0000", "999", "20266"}).(string)
	if g.maybe(0.05) {
		return s
	}
	dash := g.either([]any{"-", "-", ""}, nil).(string)
	s += dash + g.either([]any{num(12, 14), "1", "11"}, nil).(string)
	if g.maybe(0.05) {
		return s
	}
	s += g.either([]any{dash}, []any{"-", ""}).(string) + num(28, 33)
	if g.maybe(0.05) {
		return s
	}
	colon := g.either([]any{":", ":", ""}, nil).(string)
	s += g.either([]any{"T", " "}, []any{"t", ""}).(string) + num(23, 26)
	if g.maybe(0.9) {
		s += g.either([]any{colon}, []any{":", ""}).(string) + num(59, 61)
		if g.maybe(0.9) {
			s += g.either([]any{colon}, []any{":", ""}).(string) + g.either([]any{num(59, 61), "5"}, nil).(string)
			s += g.either([]any{"", "", ".123456", ".1", ",5", ".123456789"}, []any{"."}).(string)
		}
	}
	return s + g.either([]any{"", "", "Z", "+09:00", "-0500", "+05", "+23:59", "-00:30"}, []any{"z", "+2400", "+1", " +01:00", "+24", "+0099"}).(string)
}

func TestMasakariOversizeBodyGets413(t *testing.T) {
	g := newMasakariRig(t)
	// A valid notification padded past oslo.middleware's 114688 bytes.
	body := strings.Replace(valid[0].body, `{"notification"`, `{"notification"`+strings.Repeat(" ", 114688), 1)
	code, out, _ := g.post("/v1/notifications", body)
	if code != http.StatusRequestEntityTooLarge || out["overLimit"] == nil {
		t.Errorf("got %d %v, want 413 overLimit", code, out)
	}
	if n := len(g.observations()); n != 0 {
		t.Errorf("an oversize body made %d observations", n)
	}
	// Whitespace is not the limit's business below it.
	if code, out, _ := g.post("/v1/notifications", strings.Repeat(" ", 100000)+valid[0].body); code != http.StatusAccepted {
		t.Errorf("a padded body under the limit: got %d %v, want 202", code, out)
	}
}

func TestMasakariWrongMethodGets405(t *testing.T) {
	g := newMasakariRig(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		code, out, h := g.do(m, "/v1/notifications", valid[0].body)
		if code != http.StatusMethodNotAllowed || h.Get("Allow") != http.MethodPost || out["badMethod"] == nil {
			t.Errorf("%s: got %d Allow %q %v, want 405 badMethod, Allow: POST", m, code, h.Get("Allow"), out)
		}
	}
	if n := len(g.observations()); n != 0 {
		t.Errorf("wrong methods made %d observations", n)
	}
}

func TestMasakariAuth(t *testing.T) {
	const tok1, tok2 = "s3cret-token-one", "s3cret-token-two"
	g := newMasakariRig(t, tok1, tok2)
	for _, c := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", []string{"X-Auth-Token", "guess"}, http.StatusUnauthorized},
		{"a prefix of a token", []string{"X-Auth-Token", tok1[:5]}, http.StatusUnauthorized},
		{"empty token", []string{"X-Auth-Token", ""}, http.StatusUnauthorized},
		{"first token", []string{"X-Auth-Token", tok1}, http.StatusAccepted},
		{"second token", []string{"X-Auth-Token", tok2}, http.StatusAccepted},
	} {
		before := len(g.observations())
		code, out, _ := g.post("/v1/notifications", valid[0].body, c.header...)
		if code != c.want {
			t.Errorf("%s: got %d %v, want %d", c.name, code, out, c.want)
		}
		if made := len(g.observations()) - before; (c.want == http.StatusAccepted) != (made == 1) {
			t.Errorf("%s: made %d observations", c.name, made)
		}
	}
	// Unauthenticated requests are refused before anything else: no method hint.
	if code, _, _ := g.do(http.MethodGet, "/v1/notifications", ""); code != http.StatusUnauthorized {
		t.Errorf("GET without a token: got %d, want 401", code)
	}
	if strings.Contains(g.log.String(), "s3cret") {
		t.Errorf("a token is in the log:\n%s", g.log.String())
	}
	if !strings.Contains(g.log.String(), "fake-compute-1") {
		t.Errorf("the log does not show the accepted notifications:\n%s", g.log.String())
	}

	open := newMasakariRig(t)
	if code, out, _ := open.post("/v1/notifications", valid[0].body); code != http.StatusAccepted {
		t.Errorf("no tokens configured: got %d %v, want 202 (open)", code, out)
	}
}

// Mounted in Vigil's API, the endpoint answers beside the rest of /v1, and
// keystoneauth's version discovery (GET /v1) finds Masakari's versions.
func TestMasakariMountedInVigilsAPI(t *testing.T) {
	var got []model.Observation
	m := api.NewMasakari(api.MasakariConfig{Observe: func(o model.Observation) { got = append(got, o) }})
	srv := httptest.NewServer(validated(t, api.Handler(nil, nil, slog.New(slog.DiscardHandler), api.WithMasakari(m))))
	defer srv.Close()
	for _, path := range []string{"/v1/notifications", "/v1/abc/notifications"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(valid[4].body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST %s: got %d, want 202", path, resp.StatusCode)
		}
	}
	if len(got) != 2 || got[1].Monitors[0].Server != "96ab1c42-668c-4f2d-8689-afa3301d4ee9" {
		t.Errorf("observations: %+v", got)
	}
	resp, err := http.Get(srv.URL + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Version struct{ ID, Status, Version, MinVersion string } `json:"version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode != http.StatusOK || v.Version.Version != "1.2" || v.Version.Status != "CURRENT" {
		t.Errorf("GET /v1: got %d %+v, want Masakari's version document (1.2, CURRENT)", resp.StatusCode, v)
	}
	// Without the endpoint, there is no such route.
	plain := httptest.NewServer(api.Handler(nil, nil, slog.New(slog.DiscardHandler)))
	defer plain.Close()
	resp2, err := http.Post(plain.URL+"/v1/notifications", "application/json", strings.NewReader(valid[0].body))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("without a Masakari endpoint: got %d, want 404", resp2.StatusCode)
	}
}

// Acceptance criterion 3 of issue 14: python3-masakariclient (Debian's, with
// openstacksdk: what masakari-monitors use) posts each monitor's notification to
// Vigil, Vigil observes it, and the client parses Vigil's answer; a malformed one
// comes back to the client as a 400 naming the field; a wrong token as a 401.
func TestIntegrationMasakariClient(t *testing.T) {
	if os.Getenv("VIGIL_MASAKARICLIENT") != "1" {
		t.Skip("set VIGIL_MASAKARICLIENT=1 to post with Debian's python3-masakariclient (apt-get install python3-masakariclient)")
	}
	py := masakariPython(t, "masakariclient.plugin, openstack, keystoneauth1.loading")
	const token = "vigil-test-token"
	g := newMasakariRig(t, token)
	type answer struct {
		OK           bool           `json:"ok"`
		Status       int            `json:"status"`
		Error        string         `json:"error"`
		Notification map[string]any `json:"notification"`
	}
	// One python process posts them all (openstacksdk takes ~1.5 s to import).
	post := func(reqs ...map[string]any) []answer {
		t.Helper()
		var in bytes.Buffer
		for _, r := range reqs {
			b, _ := json.Marshal(r)
			in.Write(append(b, '\n'))
		}
		cmd := exec.Command(py, filepath.Join("..", "test", "masakari", "notify.py"), g.srv.URL+"/v1/3f1c0e5bd1a84f0e8c1d2b7a9e6f4c21")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
		cmd.Stdin = &in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("notify.py: %v\n%s", err, stderr.String())
		}
		var as []answer
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var a answer
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("notify.py: %v: %s", err, out)
			}
			as = append(as, a)
		}
		if len(as) != len(reqs) {
			t.Fatalf("notify.py answered %d of %d: %s\n%s", len(as), len(reqs), out, stderr.String())
		}
		return as
	}
	cases := []struct {
		typ, host, gen string
		payload        map[string]string
		want           model.MonitorReport
	}{
		{"COMPUTE_HOST", "fake-compute-1", "2026-11-24T16:06:42.123456", map[string]string{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"},
			model.MonitorReport{Type: "COMPUTE_HOST", Host: "fake-compute-1", Event: "STOPPED", Payload: map[string]string{"host_status": "NORMAL", "cluster_status": "OFFLINE"}}},
		{"VM", "fake-compute-2", "2026-11-24T16:06:42.123456", map[string]string{"event": "LIFECYCLE", "instance_uuid": "96ab1c42-668c-4f2d-8689-afa3301d4ee9", "vir_domain_event": "STOPPED_FAILED"},
			model.MonitorReport{Type: "VM", Host: "fake-compute-2", Server: "96ab1c42-668c-4f2d-8689-afa3301d4ee9", Event: "LIFECYCLE", Payload: map[string]string{"vir_domain_event": "STOPPED_FAILED"}}},
		{"PROCESS", "fake-compute-3", "2026-11-24T16:06:42.123456", map[string]string{"event": "STOPPED", "process_name": "/usr/bin/nova-compute"},
			model.MonitorReport{Type: "PROCESS", Host: "fake-compute-3", Event: "STOPPED", Payload: map[string]string{"process_name": "/usr/bin/nova-compute"}}},
	}
	var reqs []map[string]any
	for _, c := range cases {
		reqs = append(reqs, map[string]any{"token": token, "notification": map[string]any{"type": c.typ, "hostname": c.host, "generated_time": c.gen, "payload": c.payload}})
	}
	reqs = append(reqs,
		map[string]any{"token": token, "notification": map[string]any{"type": "COMPUTE_HOST", "hostname": "fake-compute-1", "generated_time": "2026-11-24T16:06:42", "payload": map[string]string{"event": "DOWN"}}},
		map[string]any{"token": "not-the-token", "notification": map[string]any{"type": "COMPUTE_HOST", "hostname": "fake-compute-1", "generated_time": "2026-11-24T16:06:42", "payload": map[string]string{"event": "STOPPED"}}})
	answers := post(reqs...)
	obs := g.observations()
	if len(obs) != len(cases) {
		t.Fatalf("%d observations, want %d (one per accepted notification, none for refused ones)", len(obs), len(cases))
	}
	for i, c := range cases {
		a := answers[i]
		if !a.OK {
			t.Errorf("%s: the client got %d: %s", c.typ, a.Status, a.Error)
			continue
		}
		rep := obs[i].Monitors[0]
		if a.Notification["notification_uuid"] != rep.ID || a.Notification["status"] != "new" || a.Notification["type"] != c.typ ||
			a.Notification["generated_time"] != c.gen || !jsonEqual(a.Notification["payload"], c.payload) {
			t.Errorf("%s: the client parsed %v; want the report's ID %s, status new, the type, time and payload sent", c.typ, a.Notification, rep.ID)
		}
		rep.ID, rep.At, rep.Generated = "", time.Time{}, time.Time{}
		if !jsonEqual(rep, c.want) {
			t.Errorf("%s: report %s, want %s", c.typ, mustJSON(rep), mustJSON(c.want))
		}
	}
	if bad := answers[len(cases)]; bad.OK || bad.Status != http.StatusBadRequest || !strings.Contains(bad.Error, "notification.payload.event") {
		t.Errorf("malformed: the client got %+v, want a 400 naming notification.payload.event", bad)
	}
	if denied := answers[len(cases)+1]; denied.OK || denied.Status != http.StatusUnauthorized {
		t.Errorf("wrong token: the client got %+v, want 401", denied)
	}
}

func jsonEqual(a, b any) bool {
	return mustJSON(a) == mustJSON(b)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var norm any
	_ = json.Unmarshal(b, &norm)
	b, _ = json.Marshal(norm)
	return string(b)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// The same requests to Masakari itself (the peer in ../shared/peers/masakari,
// beside the OpenStack peer) and to Vigil get the same status, but for the two
// documented differences: Vigil knows no segments (a host Masakari does not hold
// is still observed) and does not refuse repeats (409). The valid notifications
// sent are ones Masakari's engine ignores or only logs (a host STARTED, a host
// whose status is UNKNOWN or not given, a VM event it does not handle, a process
// STARTED): the peer's computes are not disabled or evacuated.
func TestIntegrationMasakariPeerSameStatus(t *testing.T) {
	if os.Getenv("VIGIL_MASAKARI_PEER") != "1" {
		t.Skip("set VIGIL_MASAKARI_PEER=1 with Masakari's peer up (../shared/peers/openstack/up.sh, then ../shared/peers/masakari/up.sh) to compare Vigil's answers with Masakari's")
	}
	py := masakariPython(t, "openstack")
	conf := os.Getenv("OS_CLIENT_CONFIG_FILE")
	if conf == "" {
		conf = "/var/tmp/vigil-openstack/clouds.yaml"
	}
	cmd := exec.Command(py, "-c", `import openstack
c = openstack.connect(cloud="vigil-dev")
print(c.session.get_token())
print(c.session.get_endpoint(service_type="compute", interface="public"))
print(c.session.get_endpoint(service_type="instance-ha", interface="public"))`)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_CLIENT_CONFIG_FILE=" + conf}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("Masakari's peer does not answer (keystone token and instance-ha endpoint from %s): %v: %s", conf, err, lastLine(string(out)))
	}
	lines := strings.Fields(string(out))
	token, computeURL, endpoint := lines[len(lines)-3], lines[len(lines)-2], lines[len(lines)-1]
	host := os.Getenv("VIGIL_MASAKARI_HOST")
	if host == "" {
		host = "fake-compute-3"
	}
	g := newMasakariRig(t, token)
	send := func(base, tok, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, base+"/notifications", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	vigilURL := g.srv.URL + "/v1/" + endpoint[strings.LastIndex(endpoint, "/")+1:]
	// Masakari leaves a host on maintenance (and its compute service disabled)
	// after it handled a failure of it, and then refuses every notification for it
	// (409): an earlier run's on the same peer, or this test's own STOPPED. The host
	// is restored before the test, waiting for a flow still running (a host failure
	// flow takes 4 minutes: 60 s of Nova's RPC to a live compute, then 180 s of
	// sleep); after it, only if Masakari's engine has not taken this test's STOPPED
	// yet (the next run waits for it). test/peers/masakari/reset.sh clears what an
	// engine killed mid-flow left.
	masakariRestore(t, endpoint, computeURL, token, host, 6*time.Minute)
	t.Cleanup(func() { masakariRestore(t, endpoint, computeURL, token, host, 0) })
	// Masakari refuses a payload it had for the host with a generated_time less
	// than 180 s earlier or at any time later, even from an earlier run of this
	// test; so each real second from 2026 on is 200 s of generated time here.
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// (In seconds: a time.Duration of 200 times a year's nanoseconds overflows.)
	gen := time.Unix(epoch.Unix()+int64(time.Since(epoch)/time.Second)*200, 0).UTC().Format("2006-01-02T15:04:05.000000")
	// The STOPPED ones last: Masakari sets the host on maintenance as soon as its
	// engine takes one (0.1 s), and refuses the next notifications for it.
	safe := []string{
		notificationJSON("COMPUTE_HOST", host, gen, map[string]string{"event": "STARTED", "host_status": "NORMAL", "cluster_status": "ONLINE"}),
		notificationJSON("VM", host, gen, map[string]string{"event": "LIFECYCLE", "instance_uuid": "0b6c1a52-8d0e-4a47-9a59-3e1c2f0d7b11", "vir_domain_event": "STARTED_BOOTED"}),
		notificationJSON("PROCESS", host, gen, map[string]string{"event": "STARTED", "process_name": "/usr/bin/nova-compute"}),
		notificationJSON("COMPUTE_HOST", host, gen, map[string]string{"event": "STOPPED", "host_status": "UNKNOWN", "cluster_status": "OFFLINE"}),
		notificationJSON("COMPUTE_HOST", host, gen, map[string]string{"event": "STOPPED"}),
	}
	type req struct {
		name, body, token string
		masakari, vigil   int
	}
	var reqs []req
	for i, b := range safe {
		reqs = append(reqs, req{fmt.Sprintf("valid %d", i), b, token, http.StatusAccepted, http.StatusAccepted})
	}
	reqs = append(reqs,
		req{"repeat of valid 0", safe[0], token, http.StatusConflict, http.StatusAccepted},
		req{"host outside Masakari's segments", notificationJSON("COMPUTE_HOST", "not-a-masakari-host", gen, map[string]string{"event": "STARTED"}), token, http.StatusBadRequest, http.StatusAccepted},
		req{"wrong token", safe[0], "not-a-token", http.StatusUnauthorized, http.StatusUnauthorized},
		req{"oversize", strings.Replace(safe[0], `{"notification"`, `{"notification"`+strings.Repeat(" ", 114688), 1), token, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge},
	)
	for _, c := range malformed {
		r := req{c.name, strings.ReplaceAll(c.body, `"h1"`, `"`+host+`"`), token, http.StatusBadRequest, http.StatusBadRequest}
		if c.name == "not UTF-8" {
			r.masakari = http.StatusInternalServerError // Masakari 14 fails on it (a UnicodeDecodeError)
		}
		reqs = append(reqs, r)
	}
	same := 0
	for _, r := range reqs {
		mc, mb := send(endpoint, r.token, r.body)
		vc, vb := send(vigilURL, r.token, r.body)
		if mc != r.masakari || vc != r.vigil {
			t.Errorf("%s: Masakari %d %v, Vigil %d %v; want %d and %d", r.name, mc, mb, vc, vb, r.masakari, r.vigil)
			continue
		}
		if mc == http.StatusAccepted {
			mn, _ := mb["notification"].(map[string]any)
			vn, _ := vb["notification"].(map[string]any)
			if !slices.Equal(slices.Sorted(maps.Keys(mn)), slices.Sorted(maps.Keys(vn))) || mn["status"] != vn["status"] || mn["generated_time"] != vn["generated_time"] || !jsonEqual(mn["payload"], vn["payload"]) {
				t.Errorf("%s: answers differ:\nMasakari %v\nVigil    %v", r.name, mn, vn)
			}
		}
		if mc == vc {
			same++
		}
	}
	t.Logf("%d requests: %d got the same status from Masakari and Vigil, %d the documented differences", len(reqs), same, len(reqs)-same)
}

// masakariCall is one request to an OpenStack API with an admin token; it returns
// the status and the decoded answer, failing the test on a transport error.
func masakariCall(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("OpenStack-API-Version", "compute 2.53")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// masakariRestore clears Masakari's on_maintenance flag of a host and enables its
// compute service in Nova again: the state Masakari leaves after a recovery. A host
// whose notification is still being processed cannot be updated (409): that is
// retried for wait, then the test fails (wait 0: it is left as it is, logged).
func masakariRestore(t *testing.T, endpoint, computeURL, token, host string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	code, m := masakariCall(t, http.MethodGet, endpoint+"/segments", token, nil)
	if code != http.StatusOK {
		t.Fatalf("Masakari GET segments: %d %v", code, m)
	}
	segs, _ := m["segments"].([]any)
	for _, s := range segs {
		seg, _ := s.(map[string]any)["uuid"].(string)
		_, hm := masakariCall(t, http.MethodGet, endpoint+"/segments/"+seg+"/hosts", token, nil)
		hosts, _ := hm["hosts"].([]any)
		for _, h := range hosts {
			hm, _ := h.(map[string]any)
			if hm["name"] != host || hm["on_maintenance"] != true {
				continue
			}
			url := endpoint + "/segments/" + seg + "/hosts/" + hm["uuid"].(string)
			for {
				code, m := masakariCall(t, http.MethodPut, url, token, map[string]any{"host": map[string]any{"on_maintenance": false}})
				if code == http.StatusOK {
					break
				}
				if code == http.StatusConflict && wait == 0 {
					t.Logf("Masakari still processes a notification for %s: left on maintenance (%v)", host, m)
					return
				}
				if code != http.StatusConflict || time.Now().After(deadline) {
					t.Fatalf("Masakari: cannot clear on_maintenance of %s: %d %v", host, code, m)
				}
				time.Sleep(2 * time.Second)
			}
		}
	}
	code, m = masakariCall(t, http.MethodGet, computeURL+"/os-services?binary=nova-compute&host="+host, token, nil)
	if code != http.StatusOK {
		t.Fatalf("Nova GET os-services: %d %v", code, m)
	}
	svcs, _ := m["services"].([]any)
	for _, sv := range svcs {
		sm, _ := sv.(map[string]any)
		if sm["status"] == "disabled" {
			if code, m := masakariCall(t, http.MethodPut, computeURL+"/os-services/"+fmt.Sprint(sm["id"]), token, map[string]any{"status": "enabled"}); code != http.StatusOK {
				t.Fatalf("Nova: cannot enable the compute service of %s: %d %v", host, code, m)
			}
		}
	}
}
