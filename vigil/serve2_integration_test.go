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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 16, criterion 1: two `vigil serve` on one MariaDB store against the Nova
// peer; the leader is killed (-9) in the middle of a host evacuation; the standby
// takes over within 2x the lease period, finishes the recovery, and Nova's instance
// actions show exactly one evacuate per server. Then again with the leader
// SIGSTOPped (paused) instead, and resumed after the takeover: it performs no
// action and writes nothing.
func TestIntegrationTwoServeKillLeaderMidEvacuation(t *testing.T) {
	t.Run("kill", func(t *testing.T) { twoServeMidEvacuation(t, false, 0) })
	t.Run("sigstop", func(t *testing.T) { twoServeMidEvacuation(t, true, 1) })
}

func twoServeMidEvacuation(t *testing.T, pause bool, hostIdx int) {
	if os.Getenv("VIGIL_OPENSTACK_CLOUD") == "" || os.Getenv("VIGIL_IPMI_OPENSTACK") == "" || os.Getenv("VIGIL_MYSQL_DSN") == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD, VIGIL_IPMI_OPENSTACK and VIGIL_MYSQL_DSN are needed: start test/peers/openstack/up.sh and " +
			"../shared/peers/ipmi/up.sh --openstack, source test/peers/openstack/env.sh, set VIGIL_IPMI_OPENSTACK=1 and " +
			"eval \"$(test/peers/mariadb/setup.sh)\"")
	}
	const leaseTTL = 4 * time.Second
	pw := os.Getenv("IPMI_PASSWORD")
	if pw == "" {
		pw = "vigil-ipmi"
	}
	t.Setenv("VIGIL_IPMI_PASSWORD", pw)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	peerYAML, err := os.ReadFile(filepath.Join(root, "bench", "nova-peer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, append(peerYAML, []byte("\nha:\n  lease_ttl: 4s\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(policy)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dsn := freshMySQL(t)

	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	cloudName := os.Getenv("VIGIL_OPENSTACK_CLOUD")
	bc, err := newNovaCloud(ctx, cloudName, "")
	if err != nil {
		t.Fatal(err)
	}
	o := BenchNovaOptions{Cloud: cloudName, Config: cfg, Servers: 2, Within: 3 * time.Minute}
	o.defaults()
	image, err := bc.imageID(ctx, o.Image)
	if err != nil {
		t.Fatal(err)
	}
	fencer, err := cfg.Fencer()
	if err != nil || fencer == nil {
		t.Fatalf("fencer: %v", err)
	}
	b := &novaBench{o: o, c: bc, fencer: fencer, image: image, bar: newBar(o.Progress, 1)}
	host := o.Hosts[hostIdx]
	prefix := fmt.Sprintf("vserve2-%d", time.Now().UnixNano()%1e6)
	t.Cleanup(func() {
		cctx := context.Background()
		if err := b.restore(cctx, host); err != nil {
			t.Errorf("restore %s: %v", host, err)
		}
		if err := bc.deleteAll(cctx, prefix, 3*time.Minute); err != nil {
			t.Errorf("delete servers: %v", err)
		}
	})
	for _, h := range o.Hosts {
		if err := b.restore(ctx, h); err != nil {
			t.Fatalf("before the test: %v", err)
		}
	}
	ids, err := b.bootOn(ctx, prefix, host)
	if err != nil {
		t.Fatal(err)
	}

	type replica struct {
		name, url string
		cmd       *exec.Cmd
		log       *syncBuf
	}
	start := func(name string) *replica {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		r := &replica{name: name, url: "http://" + addr, log: &syncBuf{}}
		r.cmd = exec.Command(bin, "serve", "--db", dsn, "--replica-id", name, "--listen", addr, "--os-cloud", cloudName,
			"--policy", policy, "--interval", "1s")
		r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = r.cmd.Process.Signal(syscall.SIGCONT)
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
			if t.Failed() {
				t.Logf("replica %s log:\n%s", name, lastLines(r.log.String(), 60))
			}
		})
		return r
	}
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func(r *replica) int {
		resp, err := client.Get(r.url + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ra, rb := start("a"), start("b")
	var leader, standby *replica
	if err := pollUntil(ctx, time.Minute, "one replica ready (leader), the other 503", func() (bool, string, error) {
		a, bb := ready(ra), ready(rb)
		switch {
		case a == 200 && bb == 503:
			leader, standby = ra, rb
		case bb == 200 && a == 503:
			leader, standby = rb, ra
		default:
			return false, fmt.Sprintf("a %d, b %d", a, bb), nil
		}
		return true, "", nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s, standby %s", leader.name, standby.name)

	// A change needs a token: made on the shared store, as an operator would.
	out, err := exec.Command(bin, "token", "create", "serve2", "--db", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil token create: %v\n%s", err, out)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	token := lines[len(lines)-1]
	body, _ := json.Marshal(map[string]any{"name": "serve2", "members": ids, "desired": len(ids), "policy": "default"})
	if err := pollUntil(ctx, time.Minute, "the leader protects the servers", func() (bool, string, error) {
		req, _ := http.NewRequest(http.MethodPost, leader.url+"/v1/clusters", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		if resp.StatusCode/100 == 2 {
			return true, "", nil
		}
		if strings.Contains(msg.String(), "unknown server") {
			return false, msg.String(), nil
		}
		return false, "", fmt.Errorf("create cluster: %d %s", resp.StatusCode, msg.String())
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // two polls with the host up

	if _, err := b.cutPower(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := pollUntil(ctx, 2*time.Minute, "the leader's intent: evacuate event", func() (bool, string, error) {
		req, _ := http.NewRequest(http.MethodGet, leader.url+"/v1/events?after=0&limit=10000", nil)
		req.Header.Set("Authorization", "Bearer "+token) // reads too, unless auth.open_reads
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		var evs []struct{ Message string }
		if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
			return false, err.Error(), nil
		}
		for _, e := range evs {
			if strings.HasPrefix(e.Message, "intent: ") && strings.Contains(e.Message, "evacuate") {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d events", len(evs)), nil
	}); err != nil {
		t.Fatal(err)
	}
	sig, what := os.Signal(syscall.SIGKILL), "kill -9"
	if pause {
		sig, what = syscall.SIGSTOP, "SIGSTOP"
	}
	if err := leader.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var takeover time.Duration
	if err := pollUntil(ctx, 3*leaseTTL, "the standby ready", func() (bool, string, error) {
		if ready(standby) == 200 {
			takeover = time.Since(killed)
			return true, "", nil
		}
		return false, "", nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("takeover: standby %s ready %.2f s after %s of leader %s (bound %s)", standby.name, takeover.Seconds(), what, leader.name, 2*leaseTTL)
	if takeover > 2*leaseTTL {
		t.Errorf("takeover took %s, want within %s", takeover, 2*leaseTTL)
	}
	_, targets, err := b.activeElsewhere(ctx, ids, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("servers now on %v", targets)
	if pause {
		// Resume the paused leader: it must find its lease gone and do nothing.
		mark := leader.log.Len()
		if err := leader.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * leaseTTL)
		if c := ready(leader); c != 503 {
			t.Errorf("resumed old leader %s: /readyz %d, want 503", leader.name, c)
		}
		if c := ready(standby); c != 200 {
			t.Errorf("new leader %s: /readyz %d after the old one resumed, want 200", standby.name, c)
		}
		after := leader.log.String()[mark:]
		var evlines []string
		for _, l := range strings.Split(after, "\n") {
			if strings.Contains(l, "kind=") {
				evlines = append(evlines, l)
				// Every event line but the replica's own "no longer leads" (logged,
				// not journaled) was written to the store: a resumed old leader may
				// write nothing.
				if !strings.Contains(l, "no longer leads") {
					t.Errorf("resumed old leader journaled: %s", l)
				}
			}
			if strings.Contains(l, "intent:") || strings.Contains(l, "kind=step") {
				t.Errorf("resumed old leader acted: %s", l)
			}
		}
		t.Logf("resumed old leader %s: %d event line(s) in its log after SIGCONT: %v", leader.name, len(evlines), evlines)
	} else {
		time.Sleep(5 * time.Second) // a second evacuate, if any, would show now
	}
	for _, id := range ids {
		n := bc.evacuations(ctx, id)
		t.Logf("server %s: %d evacuate action(s)", id, n)
		if n != 1 {
			t.Errorf("server %s evacuated %d times by Nova's record, want 1", id, n)
		}
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// syncBuf is a replica's output, read while the process writes it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) Len() int                    { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Len() }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
