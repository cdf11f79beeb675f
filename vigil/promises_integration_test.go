package vigil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// Issue 13's promises re-proven on the real Nova peer and its BMCs (criterion 3):
// a host that is alive is never fenced, whatever Vigil's journal or the service's
// forced_down flag says, and a BMC entry that reaches another host's BMC is never
// used. Each test acts on its own computes and puts them back (restoreCompute).

const (
	// serviceDownTime is the peer's Nova service_down_time (up.sh): a compute that
	// stops reporting is "down" at most this long after its last report.
	serviceDownTime = 20 * time.Second
	// policyGrace is host_down_grace of ipmiPolicyFile's default policy.
	policyGrace = 3 * time.Second
)

func needIPMIPeer(t *testing.T) {
	t.Helper()
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"test/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1")
	}
}

// forceDown sets the compute service's forced_down flag as an operator does
// (`openstack compute service set --down`), retried while Nova refuses.
func (p *peer) forceDown(host string, down bool) {
	p.t.Helper()
	svc, err := p.service(host)
	if err != nil {
		p.t.Fatalf("service of %s: %v", host, err)
	}
	waitFor(p.t, 30*time.Second, fmt.Sprintf("forced_down=%v on %s", down, host), func() (bool, string) {
		_, err := p.admin.Put(context.Background(), p.admin.ServiceURL("os-services", svc.ID), map[string]any{"forced_down": down}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{200}})
		return err == nil, fmt.Sprint(err)
	})
}

// reportedSince waits until Nova shows host's service up and not forced down, with a
// report (updated_at, Nova's UTC) after since, and returns that report's time.
func (p *peer) reportedSince(host string, since time.Time, within time.Duration) time.Time {
	p.t.Helper()
	var at time.Time
	waitFor(p.t, within, host+" up in Nova with a new report", func() (bool, string) {
		svc, err := p.service(host)
		if err != nil {
			return false, err.Error()
		}
		at, _ = time.Parse("2006-01-02T15:04:05.999999", svc.UpdatedAt)
		return svc.State == "up" && !svc.Forced && at.After(since.UTC().Truncate(time.Second)), fmt.Sprintf("%+v", svc)
	})
	return at
}

// noEvacuation fails the test if Nova recorded an evacuation of any of ids.
func noEvacuation(t *testing.T, v *vigilRun, ids []string, why string) {
	t.Helper()
	for _, id := range ids {
		if n := evacuations(t, v.drv, id); n != 0 {
			t.Errorf("server %s: Nova recorded %d evacuate actions (%s)", id, n, why)
		}
	}
}

// stepsTaken lists the fence and evacuate steps of every stored incident about host.
func stepsTaken(t *testing.T, v *vigilRun, host string) []model.Step {
	t.Helper()
	ins, err := v.app.Store.Incidents(context.Background(), 100)
	if err != nil {
		t.Fatalf("stored incidents: %v", err)
	}
	var out []model.Step
	for _, in := range ins {
		for _, st := range in.Steps {
			if st.Host == host && (st.Action == model.ActFence || st.Action == model.ActEvacuate) && st.State != model.StepSkipped {
				out = append(out, st)
			}
		}
	}
	return out
}

// TestIntegrationIsolatedHostBackWhileVigilDown (issue 13, hole 1): fake-compute-2 is
// isolated (SIGSTOP: Nova reports it down, its BMC still says on); Vigil #1 journals
// the intent to fence it and stops right there (recover.Hook). While no Vigil runs,
// the isolation ends and Nova sees the compute report again. Vigil #2, on the same
// SQLite file, must not carry out the stale fence: the BMC is never asked to power
// off, the compute keeps running and reporting, nothing is evacuated, and the
// incident closes with a reason.
func TestIntegrationIsolatedHostBackWhileVigilDown(t *testing.T) {
	needIPMIPeer(t)
	p := newPeer(t)
	restoreCompute(t, p, 2)
	cfg := ipmiPolicyFile(t)
	fencer, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	if svc, err := p.service(host2); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host2, svc, err)
	}
	pre := prefix(t)
	p.boot(pre, 2, host2, false)
	ids := p.waitBooted(pre, 2)
	db := filepath.Join(t.TempDir(), "vigil.db")

	var mu sync.Mutex
	var fenceIntent *model.Step
	crashed := func(st model.Step) error {
		mu.Lock()
		defer mu.Unlock()
		if fenceIntent == nil && st.Action == model.ActFence {
			fenceIntent = &st
		}
		if fenceIntent != nil {
			return recover.ErrCrash // stopped at the fence's intent: nothing after it reaches the BMC or Nova
		}
		return nil
	}
	v1 := startVigil(t, p, runOpts{db: db, interval: time.Second, config: &cfg, fencer: fencer,
		hook: recover.Hook{AfterIntent: crashed, AfterAction: func(model.Step) error {
			mu.Lock()
			defer mu.Unlock()
			if fenceIntent != nil {
				return recover.ErrCrash
			}
			return nil
		}}})
	v1.protect("pinned", "default", ids...)
	pid := computePID(t, 2)

	isolated := time.Now()
	peerScript(t, "ctl.sh", "isolate-compute", "2")
	waitFor(t, 90*time.Second, "Vigil #1 journals the intent to fence "+host2, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return fenceIntent != nil, fmt.Sprintf("%d events", v1.count())
	})
	v1.stop()
	mu.Lock()
	intent := *fenceIntent
	mu.Unlock()
	t.Logf("Vigil #1 stopped at the intent to fence %s (step %d, rule %s), %.1f s after the isolation:\n%s",
		intent.Host, intent.ID, intent.Rule, intent.Started.Sub(isolated).Seconds(), v1.timelineSince(isolated))
	if intent.Host != host2 {
		t.Fatalf("fence intent on %s, want %s", intent.Host, host2)
	}

	// While no Vigil runs: the isolation ends, the compute reports again.
	back := time.Now()
	peerScript(t, "ctl.sh", "unisolate-compute", "2")
	report := p.reportedSince(host2, back, 30*time.Second)
	t.Logf("isolation ended %.1f s after it began; Nova has a report of %s from %s (%.1f s after the end)",
		back.Sub(isolated).Seconds(), host2, report.Format("15:04:05"), time.Since(back).Seconds())

	v2 := startVigil(t, p, runOpts{db: db, interval: time.Second, config: &cfg, fencer: fencer})
	started := time.Now()
	// Until the incident closes (and 10 s more, for anything planned after it), or
	// the BMC is asked to power off (and 15 s more, to show what followed), or 60 s.
	var closedAt, offAt time.Time
	waitFor(t, 90*time.Second, "Vigil #2 closes the incident or powers the host off", func() (bool, string) {
		if offAt.IsZero() && len(bmcPowerOffs(t, 2, isolated)) > 0 {
			offAt = time.Now()
		}
		in, ok := v2.incident("host/" + host2)
		if closedAt.IsZero() && ok && in.State.Closed() {
			closedAt = time.Now()
		}
		switch {
		case !offAt.IsZero():
			return time.Since(offAt) > 15*time.Second, "BMC asked to power off"
		case !closedAt.IsZero():
			return time.Since(closedAt) > 10*time.Second, "incident closed: " + string(in.State)
		}
		return time.Since(started) > 60*time.Second, fmt.Sprintf("incident %s", in.State)
	})
	in, _ := v2.incident("host/" + host2)
	t.Logf("Vigil #2's timeline from the isolation:\n%s\nincident %d (%s: %s), steps:\n%s",
		v2.timelineSince(isolated), in.ID, in.State, in.Reason, describeSteps(in.Steps))

	if offs := bmcPowerOffs(t, 2, isolated); len(offs) > 0 {
		t.Errorf("BMC 2 was asked to power off %.1f s after the isolation, %.1f s after Vigil #2 started: a host that came back and reports was fenced",
			offs[0].Sub(isolated).Seconds(), offs[0].Sub(started).Seconds())
	}
	if !running(pid) {
		t.Errorf("nova-compute of %s (pid %d) is gone", host2, pid)
	}
	if p, err := fencer.PowerStatus(context.Background(), host2); err != nil || p != model.PowerOn {
		t.Errorf("BMC 2 says %v (%v), want on", p, err)
	}
	if svc, err := p.service(host2); err != nil || svc.State != "up" || svc.Forced {
		t.Errorf("%s in Nova: %+v (%v), want up, not forced down", host2, svc, err)
	}
	noEvacuation(t, v2, ids, "their host was alive")
	switch {
	case in.ID == 0:
		t.Errorf("no incident about %s in the journal", host2)
	case !in.State.Closed():
		t.Errorf("incident %d of %s still %s %.0f s after Vigil #2 started (reason %q)", in.ID, host2, in.State, time.Since(started).Seconds(), in.Reason)
	case strings.TrimSpace(in.Reason) == "":
		t.Errorf("incident %d of %s %s without a reason", in.ID, host2, in.State)
	default:
		t.Logf("incident %d closed %.1f s after Vigil #2 started: %s: %s", in.ID, closedAt.Sub(started).Seconds(), in.State, in.Reason)
	}
}

// TestIntegrationOperatorForcedDownNotFenced (issue 13, hole 2): an operator forces
// the compute service of a healthy fake-compute-2 down (`openstack compute service
// set --down`). Its compute keeps reporting (Nova's updated_at advances), so it is
// alive: Vigil, watching for longer than service_down_time + the policy's grace + a
// margin, never powers it off and evacuates nothing, and its verdict on the host
// says why.
func TestIntegrationOperatorForcedDownNotFenced(t *testing.T) {
	needIPMIPeer(t)
	p := newPeer(t)
	restoreCompute(t, p, 2) // also forces it up again
	cfg := ipmiPolicyFile(t)
	if svc, err := p.service(host2); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host2, svc, err)
	}
	pre := prefix(t)
	p.boot(pre, 2, host2, false)
	ids := p.waitBooted(pre, 2)
	v := startVigilWith(t, p, cfg, time.Second)
	v.protect("pinned", "default", ids...)
	pid := computePID(t, 2)

	forced := time.Now()
	p.forceDown(host2, true)
	svc, _ := p.service(host2)
	first, _ := time.Parse("2006-01-02T15:04:05.999999", svc.UpdatedAt)
	watch := serviceDownTime + policyGrace + 15*time.Second
	var offAt time.Time
	waitFor(t, watch+30*time.Second, fmt.Sprintf("%s watched forced down for %s", host2, watch), func() (bool, string) {
		if offAt.IsZero() && len(bmcPowerOffs(t, 2, forced)) > 0 {
			offAt = time.Now()
		}
		if !offAt.IsZero() {
			return time.Since(offAt) > 15*time.Second, "BMC asked to power off"
		}
		return time.Since(forced) > watch, ""
	})
	svc, _ = p.service(host2)
	last, _ := time.Parse("2006-01-02T15:04:05.999999", svc.UpdatedAt)
	hs := hostStatus(t, v, host2)
	t.Logf("Vigil's timeline from the operator's force-down:\n%s\nverdict on %s: %s %s (%s), failed=%v\nNova: forced_down=%v state=%s, updated_at %s -> %s",
		v.timelineSince(forced), host2, hs.Verdict.Host, strings.Join(hs.Verdict.Evidence, "; "), hs.Verdict.Rule, hs.Verdict.Failed,
		svc.Forced, svc.State, first.Format("15:04:05"), last.Format("15:04:05"))
	if offs := bmcPowerOffs(t, 2, forced); len(offs) > 0 {
		t.Errorf("BMC 2 was asked to power off %.1f s after the operator forced %s down while it reported: an alive host was fenced",
			offs[0].Sub(forced).Seconds(), host2)
	}
	if !running(pid) {
		t.Errorf("nova-compute of %s (pid %d) is gone", host2, pid)
	}
	noEvacuation(t, v, ids, "their host was alive, only forced down")
	if offAt.IsZero() && (!svc.Forced || !last.After(first)) {
		t.Fatalf("the premise does not hold: %s forced_down=%v, updated_at %s -> %s (a forced-down compute that runs keeps reporting)", host2, svc.Forced, first, last)
	}
	if st := stepsTaken(t, v, host2); len(st) > 0 {
		t.Errorf("Vigil took fence or evacuate steps on %s:\n%s", host2, describeSteps(st))
	}
	ev := strings.ToLower(strings.Join(hs.Verdict.Evidence, "; "))
	if hs.Verdict.Failed || hs.Verdict.Host == string(model.HostDown) {
		t.Errorf("verdict on %s: %s (%s), want not down: it reports", host2, hs.Verdict.Host, hs.Verdict.Rule)
	}
	if !strings.Contains(ev, "forced down") || !containsAny(ev, "report", "heartbeat", "updated_at", "alive") {
		t.Errorf("verdict on %s: evidence %q, want it to say the service is forced down and the host still reports", host2, hs.Verdict.Evidence)
	}
}

func hostStatus(t *testing.T, v *vigilRun, host string) engine.HostStatus {
	t.Helper()
	for _, h := range v.app.Engine.Hosts() {
		if h.Name == host {
			return h
		}
	}
	t.Fatalf("Vigil does not know host %s", host)
	return engine.HostStatus{}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// udpAlias makes the BMC at target reachable under a second port of 127.0.0.1,
// forwarding each client's datagrams through a socket of its own (as a NAT does),
// and returns that port: one BMC under two addresses, which no address comparison
// can see through.
func udpAlias(t *testing.T, target string) int {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ups := map[string]*net.UDPConn{}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			mu.Lock()
			up, ok := ups[from.String()]
			if !ok {
				if up, err = net.DialUDP("udp", nil, dst); err != nil {
					mu.Unlock()
					continue
				}
				ups[from.String()] = up
				go func() {
					b := make([]byte, 64<<10)
					for {
						_ = up.SetReadDeadline(time.Now().Add(30 * time.Second))
						n, err := up.Read(b)
						if err != nil { // idle (the client's session is over) or closed
							mu.Lock()
							delete(ups, from.String())
							mu.Unlock()
							up.Close()
							return
						}
						_, _ = ln.WriteToUDP(b[:n], from)
					}
				}()
			}
			mu.Unlock()
			_, _ = up.Write(buf[:n])
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, up := range ups {
			up.Close()
		}
	})
	return ln.LocalAddr().(*net.UDPAddr).Port
}

// bmcPolicyFile is ipmiPolicyFile with fake-compute-1's BMC entry at port1.
func bmcPolicyFile(t *testing.T, port1 int) (Config, error) {
	t.Helper()
	t.Setenv("VIGIL_IPMI_PASSWORD", "vigil-ipmi")
	var b strings.Builder
	b.WriteString("policies:\n  - name: default\n    host_down_grace: 3s\nfencing:\n  hosts:\n")
	for n, port := range []int{port1, 9012, 9013} {
		fmt.Fprintf(&b, "    - name: fake-compute-%d\n      ipmi: {address: 127.0.0.1, port: %d, username: admin, "+
			"password_env: VIGIL_IPMI_PASSWORD, interface: lanplus, cipher_suite: 3, timeout: 5s}\n", n+1, port)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(path) // as `vigil serve --policy` reads it
}

// TestIntegrationBMCOfAnotherHost (issue 13, hole 3): fake-compute-1's BMC entry
// points at fake-compute-3's BMC. (i) Under the same address and port, the policy
// file is refused at load, with a sentence naming both hosts. (ii) Under a second
// port (a forwarder: one BMC reachable at two addresses, which the load check cannot
// see), the BMC's identity must give it away: Vigil refuses to start naming the
// conflict, or (the answer expected) fake-compute-1 is isolated, and Vigil never
// powers off fake-compute-3 (which runs) through that entry, never evacuates
// fake-compute-1's servers (which still run), and escalates the incident naming the
// identity conflict.
func TestIntegrationBMCOfAnotherHost(t *testing.T) {
	needIPMIPeer(t)
	p := newPeer(t)

	_, err := bmcPolicyFile(t, 9013)
	want := "hosts fake-compute-1 and fake-compute-3 share one BMC"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fencing.hosts[2].ipmi") {
		t.Fatalf("(i) policy file with fake-compute-3's BMC also on fake-compute-1: %v, want a refusal with %q and the field path", err, want)
	}
	t.Logf("(i) refused at load: %v", err)

	restoreCompute(t, p, 1, 3)
	alias := udpAlias(t, "127.0.0.1:9013")
	cfg, err := bmcPolicyFile(t, alias)
	if err != nil {
		t.Fatalf("(ii) policy file with fake-compute-3's BMC behind port %d for fake-compute-1: %v", alias, err)
	}
	fencer, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	id := fencer.(cloud.Identifier)
	ctx := context.Background()
	g1, err1 := id.Identity(ctx, host1)
	g3, err3 := id.Identity(ctx, host3)
	g2, err2 := id.Identity(ctx, host2)
	if err := errors.Join(err1, err2, err3); err != nil || g1 != g3 || g2 == g3 {
		t.Fatalf("(ii) the alias does not reach BMC 3: GUIDs %s / %s / %s (%v)", g1, g2, g3, err)
	}
	t.Logf("(ii) fake-compute-1's entry 127.0.0.1:%d reports GUID %s, as fake-compute-3's 127.0.0.1:9013 (fake-compute-2: %s)", alias, g1, g2)

	for _, h := range []string{host1, host3} {
		if svc, err := p.service(h); err != nil || svc.State != "up" || svc.Forced {
			t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", h, svc, err)
		}
	}
	pre := prefix(t)
	p.boot(pre, 2, host1, false)
	ids := p.waitBooted(pre, 2)
	var refused error
	v := startVigil(t, p, runOpts{interval: time.Second, config: &cfg, fencer: fencer, startErr: &refused})
	if v == nil { // refusing to start on the conflict is the other acceptable answer
		msg := strings.ToLower(refused.Error())
		if !strings.Contains(msg, host1) || !strings.Contains(msg, host3) || !containsAny(msg, "guid", "identity") {
			t.Fatalf("Vigil refused to start with %q, want a sentence naming %s, %s and the GUID conflict", refused, host1, host3)
		}
		t.Logf("(ii) Vigil refused to start: %v", refused)
		return
	}
	v.protect("pinned", "default", ids...)
	pid1, pid3 := computePID(t, 1), computePID(t, 3)

	isolated := time.Now()
	peerScript(t, "ctl.sh", "isolate-compute", "1")
	var offAt time.Time
	waitFor(t, 150*time.Second, "Vigil escalates "+host1+"'s incident or powers a host off", func() (bool, string) {
		if offAt.IsZero() && len(bmcPowerOffs(t, 3, isolated))+len(bmcPowerOffs(t, 1, isolated)) > 0 {
			offAt = time.Now()
		}
		if !offAt.IsZero() {
			return time.Since(offAt) > 15*time.Second, "BMC asked to power off"
		}
		in, ok := v.incident("host/" + host1)
		if ok && in.State.Closed() {
			return true, string(in.State)
		}
		return time.Since(isolated) > serviceDownTime+policyGrace+60*time.Second, fmt.Sprintf("incident %v %s", ok, in.State)
	})
	in, _ := v.incident("host/" + host1)
	t.Logf("Vigil's timeline from the isolation of %s:\n%s\nincident %d (%s: %s), steps:\n%s",
		host1, v.timelineSince(isolated), in.ID, in.State, in.Reason, describeSteps(in.Steps))

	if offs := bmcPowerOffs(t, 3, isolated); len(offs) > 0 {
		t.Errorf("BMC 3 was asked to power off %.1f s after %s was isolated: %s's entry was used to power off %s, which ran",
			offs[0].Sub(isolated).Seconds(), host1, host1, host3)
	}
	if offs := bmcPowerOffs(t, 1, isolated); len(offs) > 0 {
		t.Errorf("BMC 1 was asked to power off (no entry names it)")
	}
	if !running(pid3) {
		t.Errorf("nova-compute of %s (pid %d) is gone: powered off through %s's entry", host3, pid3, host1)
	}
	if !running(pid1) {
		t.Errorf("nova-compute of %s (pid %d) is gone", host1, pid1)
	}
	noEvacuation(t, v, ids, fmt.Sprintf("their host %s was never fenced: it is isolated and still runs them", host1))
	reason := strings.ToLower(in.Reason)
	switch {
	case in.ID == 0:
		t.Errorf("no incident about %s", host1)
	case in.State != model.IncidentEscalated:
		t.Errorf("incident %d of %s is %s (%s), want escalated: a BMC that is another host's is a configuration error, retrying cannot fix it", in.ID, host1, in.State, in.Reason)
	case !strings.Contains(reason, host3) || !containsAny(reason, "guid", "identity"):
		t.Errorf("incident %d of %s escalated with %q, want the reason to name the identity conflict with %s", in.ID, host1, in.Reason, host3)
	default:
		t.Logf("escalated %.1f s after the isolation: %s", in.Updated.Sub(isolated).Seconds(), in.Reason)
	}
}
