package vigil

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// startOnSim runs a Vigil with the given policy file on a small simulated cloud.
func startOnSim(t *testing.T, policyFile string) (*App, *sim.Cloud) {
	t.Helper()
	cfg, err := ParseConfig([]byte(policyFile))
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
	ctx, cancel := context.WithCancel(context.Background())
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "v.db"), Interval: 200 * time.Millisecond,
		Config: cfg, Compute: cloud, Fencer: cloud, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		if err := app.Run(ctx); err != nil {
			t.Logf("Vigil stopped: %v", err)
		}
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return app, cloud
}

func post(t *testing.T, url string, hdr map[string]string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func hostVerdict(app *App, name string) model.Verdict {
	for _, h := range app.Engine.Hosts() {
		if h.Name == name {
			return h.Verdict
		}
	}
	return model.Verdict{}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("within 10 s: %s never happened", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// masakari-hostmonitor's notification reaches the engine as an observation: the host
// becomes suspect with the monitor's words as evidence, never failed by it alone,
// and nothing is done to it. Without a token the endpoint refuses; without the
// policy file's masakari section there is no endpoint at all.
func TestMasakariNotificationBecomesAnObservation(t *testing.T) {
	t.Setenv("TEST_MASAKARI_TOKEN", "masakari-token-0123456789")
	app, cloud := startOnSim(t, "masakari: {tokens: [{token_env: TEST_MASAKARI_TOKEN}]}\n")
	waitUntil(t, "host-a listed", func() bool { return hostVerdict(app, "host-a").Host == string(model.HostUp) })
	n := map[string]any{"notification": map[string]any{"type": "COMPUTE_HOST", "hostname": "host-a",
		"generated_time": time.Now().UTC().Format("2006-01-02T15:04:05.000000"),
		"payload":        map[string]any{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}}}
	url := "http://" + app.Addr() + "/v1/notifications"
	if code, body := post(t, url, nil, n); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d %s, want 401", code, body)
	}
	code, body := post(t, url, map[string]string{"X-Auth-Token": "masakari-token-0123456789"}, n)
	if code != http.StatusAccepted || !strings.Contains(body, "notification_uuid") {
		t.Fatalf("with the token: %d %s, want 202 with the notification", code, body)
	}
	waitUntil(t, "host-a suspect by the monitor's word", func() bool {
		v := hostVerdict(app, "host-a")
		return v.Host == string(model.HostSuspect) && strings.Contains(strings.Join(v.Evidence, " "), "monitor")
	})
	time.Sleep(time.Second)
	if v := hostVerdict(app, "host-a"); v.Failed {
		t.Fatalf("host-a failed on a monitor's word alone: %+v", v)
	}
	if c := cloud.Calls(); c["bmc-power-off"]+c["evacuate"]+c["force-down"] != 0 {
		t.Fatalf("acted on a monitor's word: %v", c)
	}

	plain, _ := startOnSim(t, "")
	// With a valid API token (without one, any route is a 401: no one learns what is served).
	if code, _ := post(t, "http://"+plain.Addr()+"/v1/notifications", apiToken(t, plain), n); code != http.StatusNotFound {
		t.Fatalf("no masakari section: %d, want 404 (no endpoint)", code)
	}
}

// An agent listed in the policy file heartbeats with its token and is told its
// orders; another host's token, or none, is refused; without an agents section there
// is no endpoint.
func TestAgentBeatsReachTheEngine(t *testing.T) {
	t.Setenv("TEST_AGENT_A", "agent-a-token-0123456789")
	t.Setenv("TEST_AGENT_B", "agent-b-token-0123456789")
	app, _ := startOnSim(t, `
agents:
  interval: 200ms
  hosts:
    - {name: host-a, token_env: TEST_AGENT_A}
    - {name: host-b, token_env: TEST_AGENT_B}
`)
	url := "http://" + app.Addr() + "/v1/agent/beat"
	beat := func(seq uint64) model.AgentBeat {
		return model.AgentBeat{Host: "host-a", Path: model.PathManagement, Boot: "b1", Seq: seq, Sent: time.Now(), Interval: 200 * time.Millisecond}
	}
	if code, _ := post(t, url, map[string]string{"Authorization": "Bearer agent-b-token-0123456789"}, beat(1)); code != http.StatusUnauthorized {
		t.Fatalf("host-a with host-b's token: %d, want 401", code)
	}
	if code, _ := post(t, url, nil, beat(1)); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	var seq uint64
	waitUntil(t, "host-a's agent heard", func() bool {
		seq++
		code, body := post(t, url, map[string]string{"Authorization": "Bearer agent-a-token-0123456789"}, beat(seq))
		if code != http.StatusOK {
			t.Fatalf("beat %d: %d %s", seq, code, body)
		}
		var o model.AgentOrders
		if err := json.Unmarshal([]byte(body), &o); err != nil || o.Interval != 200*time.Millisecond {
			t.Fatalf("orders %s: %v, want the interval of the policy file", body, err)
		}
		for _, ev := range recentEvents(t, app) {
			if ev.Subject == "agent/host-a" && strings.Contains(ev.Message, "agent up") {
				return true
			}
		}
		return false
	})
	plain, _ := startOnSim(t, "")
	// With a valid API token (without one, any route is a 401: no one learns what is served).
	if code, _ := post(t, "http://"+plain.Addr()+"/v1/agent/beat", apiToken(t, plain), beat(1)); code != http.StatusNotFound {
		t.Fatalf("no agents section: %d, want 404 (no endpoint)", code)
	}
}

func recentEvents(t *testing.T, app *App) []model.Event {
	t.Helper()
	evs, err := app.Store.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// apiToken is the header of a new API token of app.
func apiToken(t *testing.T, app *App) map[string]string {
	t.Helper()
	tok, err := app.CreateToken(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}
