package vigil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/model"
)

// moves counts the migrations Nova recorded for a server, by instance action.
func moves(t *testing.T, drv *openstack.Driver, id string) (live, cold int) {
	t.Helper()
	for _, a := range actionNames(t, drv, id) {
		switch a {
		case cloud.ActionLiveMigration:
			live++
		case cloud.ActionMigrate:
			cold++
		}
	}
	return live, cold
}

// hostsOf maps each server to its host now.
func hostsOf(t *testing.T, p *peer, ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		out[id] = p.mustServer(id).Host
	}
	return out
}

// TestIntegrationLiveMigrateRung: a policy whose ladder for a hung guest is
// [live-migrate]; masakari-instancemonitor reports the guest agent of a server
// silent (its VM notification, as a monitor on its host sends it): Vigil
// live-migrates it (host null, block_migration auto, Nova's scheduler places it),
// sees it ACTIVE on another host and resolves; Nova records one live-migration.
func TestIntegrationLiveMigrateRung(t *testing.T) {
	p := newPeer(t)
	pre := prefix(t)
	p.boot(pre, 1, host1, false)
	id := p.waitBooted(pre, 1)[0]
	t.Setenv("TEST_MASAKARI_TOKEN", "masakari-token-migrate-0123456789")
	cfg, err := ParseConfig([]byte("masakari: {tokens: [{token_env: TEST_MASAKARI_TOKEN}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol := model.DefaultPolicy()
	pol.Ladders[model.FaultHung] = []model.Action{model.ActLiveMigrate}
	pol.StepTimeout = 90 * time.Second
	cfg.Policies["move"] = pol
	v := startVigil(t, p, runOpts{interval: time.Second, config: &cfg})
	v.protect("web", "move", id)

	start := time.Now()
	n := map[string]any{"notification": map[string]any{"type": "VM", "hostname": host1,
		"generated_time": time.Now().UTC().Format("2006-01-02T15:04:05.000000"),
		"payload":        map[string]any{"event": "QEMU_GUEST_AGENT_ERROR", "instance_uuid": id, "vir_domain_event": "STOPPED_FAILED"}}}
	if code, body := post(t, "http://"+v.app.Addr()+"/v1/notifications", map[string]string{"X-Auth-Token": "masakari-token-migrate-0123456789"}, n); code != http.StatusAccepted {
		t.Fatalf("masakari VM notification: %d %s", code, body)
	}
	issued := v.waitEvent(30*time.Second, "live migration issued", isEvent("step", "server/"+id, "issued: live-migrate "+id+" from "+host1))
	resolved := v.waitEvent(120*time.Second, "incident of "+id+" resolved", isEvent("incident", "server/"+id, "resolved"))
	s := p.mustServer(id)
	if s.Host == host1 || s.Status != model.StatusActive {
		t.Fatalf("server %s: %s on %s after the live-migrate rung\n%s", id, s.Status, s.Host, v.timeline())
	}
	if live, cold := moves(t, v.drv, id); live != 1 || cold != 0 {
		t.Fatalf("Nova recorded %d live and %d cold migrations of %s, want exactly 1 live\n%s", live, cold, id, v.timeline())
	}
	in, ok := v.incident("server/" + id)
	if !ok || in.State != model.IncidentResolved || len(in.Steps) != 1 || in.Steps[0].Action != model.ActLiveMigrate ||
		in.Steps[0].State != model.StepSucceeded || in.Steps[0].Prior != 0 {
		t.Fatalf("journaled incident %+v\n%s", in, describeSteps(in.Steps))
	}
	t.Logf("hung report -> live-migrate issued %.1f s, -> resolved (ACTIVE on %s) %.1f s; steps:\n%s",
		issued.At.Sub(start).Seconds(), s.Host, resolved.At.Sub(start).Seconds(), describeSteps(in.Steps))
}

// TestIntegrationDrain: `drain` of a compute with 3 protected servers: each ends
// ACTIVE on another host with exactly one live-migration action in Nova, the drain
// journaled as an incident with one succeeded step per server.
func TestIntegrationDrain(t *testing.T) {
	p := newPeer(t)
	pre := prefix(t)
	p.boot(pre, 3, host1, false)
	ids := p.waitBooted(pre, 3)
	v := startVigil(t, p, runOpts{interval: time.Second})
	v.protect("web", "default", ids...)

	start := time.Now()
	inc, err := v.app.Engine.Drain(context.Background(), host1)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	t.Logf("drain request answered in %.2f s with %d steps", time.Since(start).Seconds(), len(inc.Steps))
	done := allActiveElsewhere(t, p, ids, host1, 180*time.Second)
	resolved := v.waitEvent(30*time.Second, "drain resolved", isEvent("incident", "drain/"+host1, "resolved"))
	for _, id := range ids {
		if live, cold := moves(t, v.drv, id); live != 1 || cold != 0 {
			t.Errorf("server %s: Nova recorded %d live and %d cold migrations, want exactly 1 live", id, live, cold)
		}
	}
	in, _ := v.incident("drain/" + host1)
	if in.State != model.IncidentResolved || len(in.Steps) != 3 {
		t.Fatalf("drain incident %s: %s\n%s", in.State, in.Reason, describeSteps(in.Steps))
	}
	t.Logf("drain -> all 3 ACTIVE elsewhere %.1f s, -> incident resolved %.1f s: %s\n%s",
		done.Sub(start).Seconds(), resolved.At.Sub(start).Seconds(), in.Reason, describeSteps(in.Steps))

	// A host the cloud does not know is not drained.
	if _, err := v.app.Engine.Drain(context.Background(), "no-such-host"); err == nil {
		t.Fatal("drain of an unknown host accepted")
	}
}

// buildVigil builds the vigil binary once per test.
func buildVigil(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProc is one `vigil serve` process on the peer.
type serveProc struct {
	cmd   *exec.Cmd
	url   string
	log   *bytes.Buffer
	mu    *sync.Mutex
	done  chan struct{}
	token string // made on its store with vigil token create: every change needs one
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *serveProc) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `vigil serve` on the peer with db and waits for its API.
func startServe(t *testing.T, bin, db string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	s := &serveProc{url: "http://" + addr, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--os-cloud", os.Getenv("VIGIL_OPENSTACK_CLOUD"), "--db", db, "--listen", addr, "--interval", "1s")
	s.cmd.Stdout, s.cmd.Stderr = lockedWriter{s.mu, s.log}, lockedWriter{s.mu, s.log}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.kill() })
	waitFor(t, 30*time.Second, "vigil serve answers", func() (bool, string) {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	out, err := exec.Command(bin, "token", "create", fmt.Sprintf("test-%d", time.Now().UnixNano()), "--db", db).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil token create: %v\n%s", err, out)
	}
	f := strings.Fields(strings.TrimSpace(string(out)))
	s.token = f[len(f)-1]
	return s
}

// kill is kill -9: no cleanup of any kind runs in the process.
func (s *serveProc) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func (s *serveProc) call(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestIntegrationDrainSurvivesKill9: a `vigil serve` process is killed with
// SIGKILL in the middle of a drain of 3 servers (right after Nova recorded the
// first live migration); a new process on the same SQLite file finishes the drain
// from its journal and Nova's instance actions: every server ACTIVE on another
// host, still exactly one live migration each.
func TestIntegrationDrainSurvivesKill9(t *testing.T) {
	p := newPeer(t)
	drv, err := openstack.New(context.Background(), openstack.Config{CloudName: p.cloud, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildVigil(t)
	pre := prefix(t)
	p.boot(pre, 3, host1, false)
	ids := p.waitBooted(pre, 3)
	db := filepath.Join(t.TempDir(), "vigil.db")

	s1 := startServe(t, bin, db)
	waitFor(t, 30*time.Second, "cluster created", func() (bool, string) {
		var e map[string]any
		code := s1.call(t, http.MethodPost, "/v1/clusters", map[string]any{"name": "web", "members": ids, "policy": "default"}, &e)
		return code == http.StatusCreated || code == http.StatusOK, fmt.Sprint(code, e)
	})
	// The drain endpoint journals the drain, then issues its migrations before it
	// answers: the request runs beside a watch of Nova that kills the process as
	// soon as Nova shows the first live migration, while the others are being issued.
	start := time.Now()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s1.url+"/v1/hosts/"+host1+"/drain", nil)
		req.Header.Set("Authorization", "Bearer "+s1.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	killed := time.Time{}
	before := map[string]int{}
	waitFor(t, 30*time.Second, "the first live migration in Nova", func() (bool, string) {
		for _, id := range ids {
			if live, _ := moves(t, drv, id); live > 0 {
				s1.kill()
				killed = time.Now()
				return true, ""
			}
		}
		return false, ""
	})
	for _, id := range ids {
		before[id], _ = moves(t, drv, id)
	}
	t.Logf("vigil serve #1 killed (SIGKILL) %.2f s after the drain request; live migrations in Nova then: %v; its log:\n%s",
		killed.Sub(start).Seconds(), before, tail(s1.logs(), 25))

	s2 := startServe(t, bin, db)
	done := allActiveElsewhere(t, p, ids, host1, 180*time.Second)
	var inc model.Incident
	waitFor(t, 60*time.Second, "drain resolved by vigil serve #2", func() (bool, string) {
		var got []model.Incident
		s2.call(t, http.MethodGet, "/v1/incidents", nil, &got)
		for _, in := range got {
			if in.Subject == (model.Subject{Kind: model.KindDrain, ID: host1}) {
				inc = in
				return in.State == model.IncidentResolved, string(in.State) + ": " + in.Reason
			}
		}
		return false, "no drain incident"
	})
	if len(inc.Steps) == 0 {
		s2.call(t, http.MethodGet, fmt.Sprintf("/v1/incidents/%d", inc.ID), nil, &inc)
	}
	for _, id := range ids {
		if live, cold := moves(t, drv, id); live != 1 || cold != 0 {
			t.Errorf("server %s: Nova recorded %d live and %d cold migrations, want exactly 1 live", id, live, cold)
		}
	}
	settled := strings.Count(s2.logs(), "settled: live-migrate")
	t.Logf("drain request -> kill %.1f s -> all ACTIVE elsewhere %.1f s (after the restart %.1f s); %d step(s) settled from Nova's instance actions by #2; %s\nsteps:\n%s\n#2's log:\n%s",
		killed.Sub(start).Seconds(), done.Sub(start).Seconds(), done.Sub(killed).Seconds(), settled, inc.Reason, describeSteps(inc.Steps), tail(s2.logs(), 30))
	if hs := hostsOf(t, p, ids); slices.Contains(mapsValues(hs), host1) {
		t.Fatalf("servers still on %s: %v", host1, hs)
	}
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
