package agent_test

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/vigil-ha/vigil/detect"
	"github.com/vigil-ha/vigil/model"
	sagent "github.com/vigil-ha/vigil/source/agent"
)

const lvEnvFile = "/var/tmp/vigil-libvirt/env"

// lvEnv reads the libvirt peer's env file (KEY='value' lines), or skips.
func lvEnv(t *testing.T) map[string]string {
	t.Helper()
	if os.Getenv("VIGIL_LIBVIRT") != "1" {
		t.Skip("libvirt peer tests are off: set VIGIL_LIBVIRT=1 after test/peers/libvirt/up.sh (or source test/peers/libvirt/env.sh)")
	}
	f, err := os.Open(lvEnvFile)
	if err != nil {
		t.Skipf("libvirt peer not up (%v): run test/peers/libvirt/up.sh as root", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.HasPrefix(k, "#") || strings.HasPrefix(k, "export") {
			continue
		}
		env[k] = strings.Trim(v, `'"`)
	}
	if env["LV_URI_A"] == "" {
		t.Fatalf("%s has no LV_URI_A", lvEnvFile)
	}
	return env
}

// ctlScript is the peer's fault injector (through the repository's wrapper's target).
func ctlScript(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VIGIL_SHARED")
	if p == "" {
		root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			t.Fatalf("finding the repository: %v", err)
		}
		p = filepath.Join(strings.TrimSpace(string(root)), "..", "shared")
	}
	return filepath.Join(p, "peers", "libvirt", "ctl.sh")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// collector is Vigil's side: a real Receiver over HTTP on loopback, drained as the
// engine would (on Wake, else every tick).
type collector struct {
	rcv   *sagent.Receiver
	srv   *httptest.Server
	mu    sync.Mutex
	cond  *sync.Cond
	beats []model.AgentBeat
	// det is Vigil's detector, fed the drained beats as the engine feeds it, on a
	// view where Nova places the protected server on host-a, ACTIVE (see judge);
	// verdicts are its changes, stamped with Vigil's clock.
	det      *detect.Detector
	verdicts []model.Verdict
}

// judge makes the collector's detector see host-a up in Nova and server id on it,
// ACTIVE and protected, as Nova would while a guest dies or hangs under it.
func (c *collector) judge(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.det = detect.New(detect.Config{HostDownGrace: 10 * time.Second})
	c.det.Protect([]string{id})
	c.verdicts = append(c.verdicts, c.det.Step(now, model.Observation{At: now, Full: true, Source: "test",
		Hosts:   []model.Host{{Name: "host-a", Segment: "s", Service: model.ServiceUp, LastSeenUp: now}},
		Servers: []model.Server{{ID: id, Name: "vm1", Host: "host-a", Status: model.StatusActive, Intent: model.IntentOn, Updated: now.Add(-time.Minute)}}})...)
}

// waitVerdict returns the first verdict from index from on that satisfies ok.
func (c *collector) waitVerdict(t *testing.T, from int, timeout time.Duration, what string, ok func(model.Verdict) bool) model.Verdict {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		for i := from; i < len(c.verdicts); i++ {
			if ok(c.verdicts[i]) {
				v := c.verdicts[i]
				c.mu.Unlock()
				return v
			}
		}
		n := len(c.verdicts)
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no verdict %s within %s (%d verdicts since: %v)", what, timeout, n-from, c.verdictsSince(from))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *collector) verdictMark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.verdicts)
}

func (c *collector) verdictsSince(from int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, v := range c.verdicts[min(from, len(c.verdicts)):] {
		out = append(out, fmt.Sprintf("%s %s%s/%s (%s)", v.Subject, v.Host, v.Server, v.Fault, v.Rule))
	}
	return out
}

func newCollector(t *testing.T, orders func() model.AgentOrders) *collector {
	c := &collector{rcv: &sagent.Receiver{
		Tokens: func(h string) (string, bool) { return "tok-" + h, h != "" },
		Orders: func(string) model.AgentOrders { return orders() },
	}}
	c.cond = sync.NewCond(&c.mu)
	c.srv = httptest.NewServer(c.rcv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.srv.Close() })
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.rcv.Wake():
			case <-tick.C:
			}
			got := c.rcv.Drain()
			c.mu.Lock()
			c.beats = append(c.beats, got...)
			if c.det != nil {
				// As the engine does: every drain, and every tick (silence is seen by
				// time passing).
				now := time.Now()
				c.verdicts = append(c.verdicts, c.det.Step(now, model.Observation{At: now, Source: "signals", Agents: got})...)
			}
			if len(got) > 0 {
				c.cond.Broadcast()
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.beats)
}

// waitFor returns the first beat from index from on that satisfies ok.
func (c *collector) waitFor(t *testing.T, from int, timeout time.Duration, what string, ok func(model.AgentBeat) bool) model.AgentBeat {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := from; ; {
		for ; i < len(c.beats); i++ {
			if ok(c.beats[i]) {
				return c.beats[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no beat %s within %s (%d beats seen since)", what, timeout, len(c.beats)-from)
		}
		c.cond.Wait()
	}
}

func domainIn(b model.AgentBeat, name string) (model.Domain, bool) {
	if b.Report == nil {
		return model.Domain{}, false
	}
	for _, d := range b.Report.Domains {
		if d.Name == name {
			return d, true
		}
	}
	return model.Domain{}, false
}

func eventIn(b model.AgentBeat, name, event, detail string) (model.DomainEvent, bool) {
	if b.Report == nil {
		return model.DomainEvent{}, false
	}
	for _, e := range b.Report.Events {
		if e.Name == name && e.Event == event && (detail == "" || e.Detail == detail) {
			return e, true
		}
	}
	return model.DomainEvent{}, false
}

// startAgent runs the real `vigil agent` binary; its stop kills it (SIGKILL).
func startAgent(t *testing.T, url, host, libvirtURI string) (*exec.Cmd, *os.Process) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	run(t, "go", "build", "-o", bin, "github.com/vigil-ha/vigil/cmd/vigil")
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok-"+host+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"agent", "--host", host, "--token-file", tok, "--vigil", "management=" + url, "--vigil", "storage=" + url, "--interval", "1s"}
	if libvirtURI != "" {
		args = append(args, "--libvirt", libvirtURI)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &logWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, cmd.Process
}

type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			w.t.Log("agent: " + l)
		}
	}
	return len(p), nil
}

var killedAt = regexp.MustCompile(` at ([0-9]+)\.([0-9]+)`)

func parseKilledAt(t *testing.T, out string) time.Time {
	t.Helper()
	m := killedAt.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no kill time in ctl.sh's output: %q", out)
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	frac := (m[2] + "000000000")[:9]
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(sec, nsec)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p + 0.5)
	return s[i]
}

// TestIntegrationAgentOnLibvirt runs a real agent against host-a's libvirtd and a
// real Receiver, and injects the peer's faults one after the other.
func TestIntegrationAgentOnLibvirt(t *testing.T) {
	env := lvEnv(t)
	ctl := ctlScript(t)
	uri := env["LV_URI_A"]
	virsh := func(args ...string) string { return run(t, "virsh", append([]string{"-c", uri}, args...)...) }
	ensureRunning := func(name string) {
		if !strings.Contains(virsh("domstate", name), "running") {
			virsh("start", name)
		}
	}
	_ = exec.Command("bash", ctl, "unhang-guest", "vm1").Run() // a leftover of an aborted run; fails when none
	ensureRunning("vm1")
	uuid := strings.TrimSpace(virsh("domuuid", "vm1"))

	var ordersMu sync.Mutex
	orders := model.AgentOrders{Probes: map[string]model.DomainProbes{uuid: {
		GuestAgent: &model.ProbeSpec{Name: "ping", Kind: model.ProbeGuestAgent, Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Failures: 3},
		Apps: []model.ProbeSpec{{Name: "heartbeat", Kind: model.ProbeCommand, Interval: time.Second, Timeout: 900 * time.Millisecond, Failures: 2,
			// The guest's heartbeat process, stopped by hang-guest --app (SIGSTOP: state T).
			Command: []string{"/bin/sh", "-c", `read -r _ _ s _ < /proc/$(cat /run/heartbeat.pid)/stat && [ "$s" != T ]`}}},
	}}}
	c := newCollector(t, func() model.AgentOrders { ordersMu.Lock(); defer ordersMu.Unlock(); return orders })
	_, proc := startAgent(t, c.srv.URL, "host-a", uri)

	healthy := func(b model.AgentBeat) bool {
		d, ok := domainIn(b, "vm1")
		return ok && d.State == model.DomainRunning && d.GuestAgent != nil && d.GuestAgent.OK &&
			len(d.Apps) == 1 && d.Apps[0].OK
	}
	c.waitFor(t, 0, 60*time.Second, "with vm1 running and its probes healthy", healthy)
	c.judge(uuid)
	failedAs := func(fault string) func(model.Verdict) bool {
		return func(v model.Verdict) bool {
			return v.Subject == model.Subject{Kind: model.KindServer, ID: uuid} && v.Failed && v.Fault == fault
		}
	}

	t.Run("crash", func(t *testing.T) {
		const tries = 20
		var lat []time.Duration
		for i := range tries {
			from := c.mark()
			if i > 0 {
				virsh("start", "vm1")
				c.waitFor(t, from, 30*time.Second, "with vm1 running again", func(b model.AgentBeat) bool {
					d, ok := domainIn(b, "vm1")
					return ok && d.State == model.DomainRunning
				})
				from = c.mark()
			}
			vfrom := c.verdictMark()
			killed := parseKilledAt(t, run(t, "bash", ctl, "crash-guest", "vm1"))
			c.waitFor(t, from, 10*time.Second, "with vm1 shut off (crashed)", func(b model.AgentBeat) bool {
				d, ok := domainIn(b, "vm1")
				return ok && d.State == model.DomainShutoff && d.Reason == model.ReasonCrashed
			})
			v := c.waitVerdict(t, vfrom, 10*time.Second, "vm1 crashed", failedAs(model.FaultCrashed))
			lat = append(lat, v.At.Sub(killed))
			// The event may ride the same beat or (when the listing saw the state
			// first) the next one; it must come.
			c.waitFor(t, from, 5*time.Second, "with vm1's stopped/failed event", func(b model.AgentBeat) bool {
				_, ok := eventIn(b, "vm1", "stopped", model.ReasonFailed)
				return ok
			})
		}
		p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
		t.Logf("qemu killed -> Vigil's verdict crashed (server-domain-crashed), %d tries: p50 %s, p99 %s, max %s (all: %v)",
			tries, p50.Round(time.Millisecond), p99.Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond), lat)
		if p99 >= time.Second {
			t.Errorf("p99 %s: want a crash reported in under 1 s", p99)
		}
		virsh("start", "vm1")
	})

	t.Run("panic", func(t *testing.T) {
		ensureRunning("vm1")
		from := c.mark()
		c.waitFor(t, from, 60*time.Second, "with vm1 healthy", healthy)
		from = c.mark()
		start := time.Now()
		vfrom := c.verdictMark()
		run(t, "bash", ctl, "panic-guest", "vm1")
		pv := c.waitVerdict(t, vfrom, 10*time.Second, "vm1 panicked", failedAs(model.FaultPanicked))
		t.Logf("panic-guest -> Vigil's verdict panicked (%s) %s after the ctl.sh call", pv.Rule, pv.At.Sub(start).Round(time.Millisecond))
		if d := pv.At.Sub(start); d >= time.Second {
			t.Errorf("panicked verdict after %s: want under 1 s", d)
		}
		b := c.waitFor(t, from, 10*time.Second, "with a crashed/panicked event of vm1", func(b model.AgentBeat) bool {
			_, ok := eventIn(b, "vm1", "crashed", model.ReasonPanicked)
			return ok
		})
		t.Logf("panic-guest -> beat with crashed/panicked at the receiver: %s (from the ctl.sh call, which includes virsh send-key)", b.At.Sub(start).Round(time.Millisecond))
		c.waitFor(t, from, 10*time.Second, "with vm1 shut off after its panic", func(b model.AgentBeat) bool {
			d, ok := domainIn(b, "vm1")
			return ok && d.State == model.DomainShutoff
		})
		virsh("start", "vm1")
	})

	t.Run("hung", func(t *testing.T) {
		ensureRunning("vm1")
		from := c.mark()
		c.waitFor(t, from, 60*time.Second, "with vm1 healthy", healthy)
		from = c.mark()
		start := time.Now()
		vfrom := c.verdictMark()
		run(t, "bash", ctl, "hang-guest", "vm1")
		t.Cleanup(func() { exec.Command("bash", ctl, "unhang-guest", "vm1").Run() })
		hv := c.waitVerdict(t, vfrom, 20*time.Second, "vm1 hung", failedAs(model.FaultHung))
		t.Logf("hang-guest -> Vigil's verdict hung (%s) after %s: %v", hv.Rule, hv.At.Sub(start).Round(time.Millisecond), hv.Evidence)
		b := c.waitFor(t, from, 20*time.Second, "with vm1's guest agent failing 3 times in a row", func(b model.AgentBeat) bool {
			d, ok := domainIn(b, "vm1")
			return ok && d.GuestAgent != nil && d.GuestAgent.Failures >= d.GuestAgent.Threshold
		})
		d, _ := domainIn(b, "vm1")
		if d.State != model.DomainRunning {
			t.Errorf("a hung guest's domain is %s, want it still running", d.State)
		}
		t.Logf("hang-guest -> guest agent failures at threshold %d/%d: %s (probe every 500ms, timeout 500ms); last error: %s",
			d.GuestAgent.Failures, d.GuestAgent.Threshold, b.At.Sub(start).Round(time.Millisecond), d.GuestAgent.Error)
		from = c.mark()
		run(t, "bash", ctl, "unhang-guest", "vm1")
		c.waitFor(t, from, 30*time.Second, "with vm1 healthy after unhang", healthy)
	})

	t.Run("app-failed", func(t *testing.T) {
		from := c.mark()
		c.waitFor(t, from, 60*time.Second, "with vm1 healthy", healthy)
		from = c.mark()
		start := time.Now()
		vfrom := c.verdictMark()
		run(t, "bash", ctl, "hang-guest", "vm1", "--app")
		t.Cleanup(func() { exec.Command("bash", ctl, "unhang-guest", "vm1").Run() })
		av := c.waitVerdict(t, vfrom, 20*time.Second, "vm1 app-failed", failedAs(model.FaultAppFailed))
		t.Logf("hang-guest --app -> Vigil's verdict app-failed (%s) after %s: %v", av.Rule, av.At.Sub(start).Round(time.Millisecond), av.Evidence)
		b := c.waitFor(t, from, 20*time.Second, "with vm1's heartbeat app probe failing", func(b model.AgentBeat) bool {
			d, ok := domainIn(b, "vm1")
			return ok && len(d.Apps) == 1 && d.Apps[0].Failures >= d.Apps[0].Threshold
		})
		d, _ := domainIn(b, "vm1")
		if d.State != model.DomainRunning || d.GuestAgent == nil || !d.GuestAgent.OK {
			t.Errorf("with only its app stopped, vm1 should run with its guest agent answering: %+v", d)
		}
		t.Logf("hang-guest --app -> app probe failures at threshold %d/%d: %s; error: %s",
			d.Apps[0].Failures, d.Apps[0].Threshold, b.At.Sub(start).Round(time.Millisecond), d.Apps[0].Error)
		from = c.mark()
		run(t, "bash", ctl, "unhang-guest", "vm1")
		c.waitFor(t, from, 30*time.Second, "with vm1 healthy after unhang", healthy)
	})

	t.Run("libvirtd-frozen", func(t *testing.T) {
		from := c.mark()
		start := time.Now()
		run(t, "bash", ctl, "freeze-libvirtd", "A")
		t.Cleanup(func() { exec.Command("bash", ctl, "thaw-libvirtd", "A").Run() })
		b := c.waitFor(t, from, 30*time.Second, "saying libvirt is unreachable", func(b model.AgentBeat) bool {
			return b.Report != nil && b.Report.Libvirt != ""
		})
		t.Logf("libvirtd frozen -> report says so after %s: %q", b.At.Sub(start).Round(time.Millisecond), b.Report.Libvirt)
		if d, ok := domainIn(b, "vm1"); !ok || d.State != model.DomainRunning {
			t.Errorf("with libvirtd frozen, the report should keep the last domains seen (vm1 running): %+v", b.Report.Domains)
		}
		// Heartbeats never waited on libvirtd: a beat on each path every interval.
		c.mu.Lock()
		n := 0
		for _, x := range c.beats[from:] {
			if x.Path == model.PathManagement {
				n++
			}
		}
		c.mu.Unlock()
		if took := b.At.Sub(start); n < int(took/time.Second)-1 {
			t.Errorf("%d management beats in %s with libvirtd frozen: beats waited on libvirt", n, took)
		}
		from = c.mark()
		run(t, "bash", ctl, "thaw-libvirtd", "A")
		start = time.Now()
		b = c.waitFor(t, from, 30*time.Second, "with libvirt reachable again", func(b model.AgentBeat) bool {
			return b.Report != nil && b.Report.Libvirt == "" && len(b.Report.Domains) > 0
		})
		t.Logf("libvirtd thawed -> reconnected and reported in %s", b.At.Sub(start).Round(time.Millisecond))
	})

	t.Run("agent-killed", func(t *testing.T) {
		vfrom := c.verdictMark()
		if err := proc.Kill(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			// Killing the agent: its agent is suspect, and nothing else; neither its
			// host nor its guest gets a failed verdict.
			c.waitVerdict(t, vfrom, 10*time.Second, "agent of host-a suspect", func(v model.Verdict) bool {
				return v.Subject == model.Subject{Kind: model.KindAgent, ID: "host-a"} && v.Host == string(model.HostSuspect)
			})
			time.Sleep(2 * time.Second)
			for _, v := range c.verdictsSince(vfrom) {
				if strings.Contains(v, "failed") || strings.Contains(v, "host/host-a suspect") || strings.Contains(v, "dead") {
					t.Errorf("after the agent died: verdict %s", v)
				}
			}
			t.Logf("agent killed -> verdicts: %v", c.verdictsSince(vfrom))
		}()
		time.Sleep(300 * time.Millisecond) // a beat already in flight may still land
		from := c.mark()
		quiet := 3 * time.Second
		time.Sleep(quiet) // absence of beats: nothing to wait on but the time itself
		if n := c.mark() - from; n != 0 {
			t.Fatalf("%d beats after the agent was killed", n)
		}
		// Vigil's side is untouched: it still answers another host's agent.
		resp, err := c.srv.Client().Post(c.srv.URL+sagent.BeatPath, "application/json", strings.NewReader(
			fmt.Sprintf(`{"host":"host-b","path":"management","boot":"x","seq":1,"sent":%q,"interval":1000000000}`, time.Now().Format(time.RFC3339Nano))))
		if err != nil {
			t.Fatalf("receiver gone after the agent died: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 { // no token sent: refused, but answered
			t.Fatalf("receiver answered %s", resp.Status)
		}
		if !strings.Contains(virsh("domstate", "vm1"), "running") {
			t.Fatal("vm1 stopped when its host's agent died")
		}
		t.Logf("agent SIGKILLed: no beat in %s, receiver still answering, vm1 still running", quiet)
	})
}
