package vigil

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// The flagship scenario: an isolated compute (SIGSTOPped: Nova reports it down, its
// BMC still says on, so evacuating without a fence would make two copies once it
// resumes) is fenced through its BMC over real IPMI before anything is evacuated.
// It needs the OpenStack peer and the BMCs of its computes
// (../shared/peers/ipmi/up.sh --openstack); it acts on fake-compute-3 only.

const host3 = "fake-compute-3"

func sharedPeers() string {
	if d := os.Getenv("VIGIL_SHARED"); d != "" {
		return filepath.Join(d, "peers")
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "shared", "peers")
}

// ipmiPolicyFile is a policy file as an operator writes it: the default policy with
// a short grace, and the BMCs of the peer's three computes, the password from the
// environment.
func ipmiPolicyFile(t *testing.T) Config {
	t.Helper()
	pw := os.Getenv("IPMI_PASSWORD") // from /var/tmp/vigil-ipmi-openstack/env, if sourced
	if pw == "" {
		pw = "vigil-ipmi"
	}
	t.Setenv("VIGIL_IPMI_PASSWORD", pw)
	var b strings.Builder
	b.WriteString("policies:\n  - name: default\n    host_down_grace: 3s\nfencing:\n  hosts:\n")
	for n := 1; n <= 3; n++ {
		fmt.Fprintf(&b, "    - name: fake-compute-%d\n      ipmi: {address: 127.0.0.1, port: %d, username: admin, "+
			"password_env: VIGIL_IPMI_PASSWORD, interface: lanplus, cipher_suite: 3, timeout: 5s}\n", n, 9010+n)
	}
	cfg, err := ParseConfig([]byte(b.String()))
	if err != nil {
		t.Fatalf("policy file: %v", err)
	}
	if p := cfg.Policies["default"]; p.ServiceFenceOnly || p.HostDownGrace != 3*time.Second {
		t.Fatalf("default policy: %+v", p)
	}
	return cfg
}

// startVigilWith starts Vigil as startVigil does, with the given configuration and
// its fencer (`vigil serve --policy FILE --amqp URL`).
func startVigilWith(t *testing.T, p *peer, cfg Config, interval time.Duration) *vigilRun {
	t.Helper()
	fencer, err := cfg.Fencer()
	if err != nil || fencer == nil {
		t.Fatalf("fencer: %v %v", fencer, err)
	}
	return startVigil(t, p, runOpts{interval: interval, config: &cfg, fencer: fencer})
}

// computePID is fake-compute-n's nova-compute, from the peer's PID file ("PID START").
func computePID(t *testing.T, n int) int {
	t.Helper()
	dir := os.Getenv("OS_STATE_DIR")
	if dir == "" {
		dir = "/var/tmp/vigil-openstack"
	}
	b, err := os.ReadFile(filepath.Join(dir, "run", fmt.Sprintf("compute-%d.pid", n)))
	if err != nil {
		t.Fatalf("PID of fake-compute-%d: %v", n, err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
	if err != nil {
		t.Fatalf("PID file of fake-compute-%d: %q", n, b)
	}
	return pid
}

// running: the process exists and is no zombie (a stopped one runs).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// bmcPowerOffs are the times BMC n (ipmi_sim's chassis program) was asked to power
// off after since, from its own log.
func bmcPowerOffs(t *testing.T, n int, since time.Time) []time.Time {
	t.Helper()
	dir := os.Getenv("IPMI_OS_STATE_DIR")
	if dir == "" {
		dir = "/var/tmp/vigil-ipmi-openstack"
	}
	f, err := os.Open(filepath.Join(dir, fmt.Sprintf("bmc-%d", n), "chassis.log"))
	if err != nil {
		t.Fatalf("BMC %d's log: %v", n, err)
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ts, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || rest != "set power 0" {
			continue
		}
		sec, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if at.After(since) {
			out = append(out, at)
		}
	}
	return out
}

// restoreCompute registers the cleanup that puts the computes fake-compute-n (of
// ns) back as they were: it resumes each one still stopped (all of them first:
// up.sh waits for every compute to report), restarts the BMCs, restarts the
// computes and forces them up (up.sh), and checks that Nova sees them up. Register
// it first, so that it runs last (after Vigil stopped and the servers were deleted).
func restoreCompute(t *testing.T, p *peer, ns ...int) {
	t.Cleanup(func() {
		_, file, _, _ := runtime.Caller(0)
		for _, n := range ns {
			_ = exec.Command(filepath.Join(filepath.Dir(file), "..", "test", "peers", "openstack", "ctl.sh"), "unisolate-compute", fmt.Sprint(n)).Run()
		}
		if out, err := exec.Command(filepath.Join(sharedPeers(), "ipmi", "up.sh"), "--openstack").CombinedOutput(); err != nil {
			t.Errorf("ipmi/up.sh --openstack: %v\n%s", err, out)
		}
		peerScript(t, "up.sh")
		for _, n := range ns {
			host := fmt.Sprintf("fake-compute-%d", n)
			if svc, err := p.service(host); err != nil || svc.State != "up" || svc.Forced {
				t.Errorf("after restore, %s is %+v (%v), want up and not forced down", host, svc, err)
			}
		}
	})
}

func TestIntegrationIsolatedHostFencedByIPMI(t *testing.T) {
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"../shared/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1")
	}
	p := newPeer(t)
	restoreCompute(t, p, 3) // last cleanup: after Vigil stops and the servers are deleted
	cfg := ipmiPolicyFile(t)
	if svc, err := p.service(host3); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host3, svc, err)
	}
	pre := prefix(t)
	p.boot(pre, 2, host3, false)
	ids := p.waitBooted(pre, 2)
	for _, id := range ids {
		if s := p.mustServer(id); s.Host != host3 {
			t.Fatalf("server %s booted on %s, want %s", id, s.Host, host3)
		}
	}
	v := startVigilWith(t, p, cfg, time.Second)
	v.protect("pinned", "default", ids...)
	pid := computePID(t, 3)

	isolated := time.Now()
	peerScript(t, "ctl.sh", "isolate-compute", "3")
	// Nova's own view of the host, for the timeline.
	novaDown := make(chan time.Duration, 1)
	go func() {
		for time.Since(isolated) < 90*time.Second {
			if svc, err := p.service(host3); err == nil && (svc.State == "down" || svc.Forced) {
				novaDown <- time.Since(isolated)
				return
			}
			pause()
		}
		novaDown <- -1
	}()

	activeAt := allActiveElsewhere(t, p, ids, host3, 150*time.Second)
	resolved := v.waitEvent(30*time.Second, host3+" incident resolved", isEvent("incident", "host/"+host3, "resolved"))
	in, ok := v.incident("host/" + host3)
	if !ok || in.State != model.IncidentResolved {
		t.Fatalf("incident of %s: %+v\n%s", host3, in, v.timeline())
	}
	t.Logf("incident %d steps:\n%s\nVigil's timeline from the isolation:\n%s", in.ID, describeSteps(in.Steps), v.timelineSince(isolated))

	// The order: fence succeeded (power confirmed off) before the service was forced
	// down and before any evacuation was issued.
	var fenced time.Time
	var fences, markDowns int
	evacuated := map[string]int{}
	for _, st := range in.Steps {
		switch st.Action {
		case model.ActFence:
			fences++
			if st.State != model.StepSucceeded || st.Host != host3 {
				t.Errorf("fence step: %s on %s (rule %q) %s, want succeeded on %s", st.State, st.Host, st.Rule, st.Error, host3)
			}
			fenced = st.Finished
		case model.ActMarkDown:
			markDowns++
			if st.State != model.StepSucceeded {
				t.Errorf("mark-down %s: %s", st.State, st.Error)
			}
			if fenced.IsZero() || st.Started.Before(fenced) {
				t.Errorf("mark-down started %s, before the fence was confirmed (%s)", st.Started.Format(time.StampMilli), fenced.Format(time.StampMilli))
			}
		case model.ActEvacuate:
			if fenced.IsZero() || st.Started.Before(fenced) {
				t.Errorf("evacuate of %s started %s, before the fence was confirmed (%s)", st.Server, st.Started.Format(time.StampMilli), fenced.Format(time.StampMilli))
			}
			if st.State == model.StepSucceeded {
				evacuated[st.Server]++
			}
		case model.ActResetState:
		default:
			t.Errorf("unexpected step %s %s %s", st.Action, st.Server, st.State)
		}
	}
	if fences != 1 || markDowns != 1 || len(evacuated) != 2 {
		t.Fatalf("steps: %d fence, %d mark-down, %d servers evacuated; want 1, 1, 2\n%s", fences, markDowns, len(evacuated), describeSteps(in.Steps))
	}

	// What the BMC and Nova say, independently of Vigil's journal.
	offs := bmcPowerOffs(t, 3, isolated)
	if len(offs) == 0 {
		t.Fatalf("BMC 3 was never asked to power off after the isolation")
	}
	if running(pid) {
		t.Fatalf("nova-compute of %s (pid %d) still exists after the fence", host3, pid)
	}
	for _, id := range ids {
		acts, err := v.drv.Actions(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range acts {
			if a.Action != cloud.ActionEvacuate {
				continue
			}
			n++
			if a.Start.Before(offs[0]) {
				t.Errorf("server %s: Nova's evacuate started %s, before the BMC's power off %s", id, a.Start.Format(time.StampMicro), offs[0].Format(time.StampMicro))
			}
		}
		if n != 1 {
			t.Errorf("server %s: Nova recorded %d evacuate actions, want exactly 1", id, n)
		}
		if evacuated[id] != 1 {
			t.Errorf("server %s: %d succeeded evacuate steps, want 1", id, evacuated[id])
		}
	}
	nd := <-novaDown
	t.Logf("isolation of %s -> Nova reports it down %.1f s -> BMC asked to power off %.1f s -> fence confirmed %.1f s -> both servers ACTIVE elsewhere %.1f s (incident resolved %.1f s)",
		host3, nd.Seconds(), offs[0].Sub(isolated).Seconds(), fenced.Sub(isolated).Seconds(), activeAt.Sub(isolated).Seconds(), resolved.At.Sub(isolated).Seconds())
}
