package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// These tests speak real IPMI to the simulated BMCs of the OpenStack peer's fake
// computes (../shared/peers/ipmi/up.sh --openstack). They power off, isolate and
// stop the BMC of fake-compute-3 only: other tests use fake-compute-1 and -2.

const (
	peerHost     = "fake-compute-3"
	peerPort     = 9013
	peerPassword = "vigil-ipmi"
)

func peerFencer(t *testing.T, edit func(*BMC)) *Fencer {
	t.Helper()
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"../shared/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1 to run the IPMI integration tests")
	}
	b := BMC{Host: peerHost, Address: "127.0.0.1", Port: peerPort, Username: "admin", Password: peerPassword,
		Interface: Lanplus, CipherSuite: 3, Timeout: 3 * time.Second}
	if edit != nil {
		edit(&b)
	}
	f, err := New([]BMC{b})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sharedPeers(t *testing.T) string {
	if d := os.Getenv("VIGIL_SHARED"); d != "" {
		return filepath.Join(d, "peers")
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "peers")
}

func run(t *testing.T, script string, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(sharedPeers(t), script), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
}

// computePID is fake-compute-3's nova-compute process, from the peer's PID file.
func computePID(t *testing.T) int {
	t.Helper()
	dir := os.Getenv("OS_STATE_DIR")
	if dir == "" {
		dir = "/var/tmp/vigil-openstack"
	}
	b, err := os.ReadFile(filepath.Join(dir, "run", "compute-3.pid"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b)) // "PID START-TIME"
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// novaState is fake-compute-3's compute service state in Nova ("up"/"down"), and
// the time of its last report; "" when VIGIL_OPENSTACK_CLOUD is unset.
func novaState(t *testing.T) (string, time.Time) {
	t.Helper()
	name := os.Getenv("VIGIL_OPENSTACK_CLOUD")
	if name == "" {
		return "", time.Time{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(name))
	if err != nil {
		t.Fatalf("clouds.yaml entry %s: %v", name, err)
	}
	provider, err := gopenstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	provider.HTTPClient = http.Client{Timeout: 15 * time.Second}
	c, err := gopenstack.NewComputeV2(provider, eo)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services []struct {
			State     string `json:"state"`
			Forced    bool   `json:"forced_down"`
			UpdatedAt string `json:"updated_at"`
		} `json:"services"`
	}
	q := url.Values{"binary": {"nova-compute"}, "host": {peerHost}}
	if _, err := c.Get(ctx, c.ServiceURL("os-services")+"?"+q.Encode(), &doc, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil || len(doc.Services) != 1 {
		t.Fatalf("os-services of %s: %v (%d)", peerHost, err, len(doc.Services))
	}
	svc := doc.Services[0]
	at, _ := time.Parse("2006-01-02T15:04:05.999999", svc.UpdatedAt) // Nova's UTC, no zone
	if svc.Forced {
		return "forced-down", at
	}
	return svc.State, at
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// TestIntegrationFenceCompute: status on; power off (the nova-compute process is
// gone, the BMC says off, a second power off is a no-op success); power on and
// Nova sees the compute up again.
func TestIntegrationFenceCompute(t *testing.T) {
	f := peerFencer(t, nil)
	ctx := context.Background()
	t.Cleanup(func() { _ = f.PowerOn(context.Background(), peerHost) })

	var p model.Power
	d, err := timed(func() (err error) { p, err = f.PowerStatus(ctx, peerHost); return })
	if err != nil || p != model.PowerOn {
		t.Fatalf("power status of %s: %v %v, want on (is the peer up? test/peers/openstack/up.sh)", peerHost, p, err)
	}
	t.Logf("power status: %s in %s", p, d.Round(time.Millisecond))
	pid := computePID(t)
	if pid == 0 || !alive(pid) {
		t.Fatalf("nova-compute of %s (pid %d) not running though its BMC says on", peerHost, pid)
	}

	d, err = timed(func() error { return f.PowerOff(ctx, peerHost) })
	if err != nil {
		t.Fatalf("power off: %v", err)
	}
	if alive(pid) {
		t.Fatalf("power off returned but nova-compute (pid %d) still runs", pid)
	}
	t.Logf("power off: accepted in %s, nova-compute pid %d gone", d.Round(time.Millisecond), pid)
	off := time.Now()
	if p, err = f.PowerStatus(ctx, peerHost); err != nil || p != model.PowerOff {
		t.Fatalf("power status after power off: %v %v", p, err)
	}
	t.Logf("power off confirmed by the BMC %s after the request", (time.Since(off) + d).Round(time.Millisecond))
	if d, err = timed(func() error { return f.PowerOff(ctx, peerHost) }); err != nil {
		t.Fatalf("second power off (already off): %v", err)
	}
	t.Logf("power off of a host already off: success in %s", d.Round(time.Millisecond))

	if d, err = timed(func() error { return f.PowerOn(ctx, peerHost) }); err != nil {
		t.Fatalf("power on: %v", err)
	}
	on := time.Now()
	t.Logf("power on: accepted in %s", d.Round(time.Millisecond))
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := f.PowerStatus(ctx, peerHost)
		st, reported := novaState(t)
		// "up" alone could be the killed process's last report, still fresh: wait for
		// a report of the new process.
		if err == nil && p == model.PowerOn && (st == "" || st == "up" && reported.After(on.UTC())) {
			t.Logf("after power on: BMC on, the new nova-compute reported up to Nova %s later", time.Since(on).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after power on: BMC %v (%v), Nova %q after 60 s", p, err, st)
		}
		<-time.After(500 * time.Millisecond)
	}
}

// TestIntegrationWrongPassword: the BMC refuses it, terminal, with a sentence that
// names host, address and user, and never the password. Both protocols.
func TestIntegrationWrongPassword(t *testing.T) {
	const wrong = "not-the-pw-42"
	for _, intf := range []Interface{Lanplus, Lan} {
		f := peerFencer(t, func(b *BMC) {
			b.Password, b.Interface = wrong, intf
			if intf == Lan {
				b.CipherSuite = 0
			}
		})
		d, err := timed(func() error { return f.PowerOff(context.Background(), peerHost) })
		if err == nil || !cloud.IsTerminal(err) {
			t.Fatalf("%s: power off with a wrong password: %v, want a terminal error", intf, err)
		}
		want := "BMC of fake-compute-3 at 127.0.0.1:9013 refused user admin: check the fencing section of the policy file"
		if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), peerPassword) {
			t.Fatalf("%s: error %q, want it to start %q and hold no password", intf, err, want)
		}
		t.Logf("%s: refused in %s: %v", intf, d.Round(time.Millisecond), err)
	}
	if p, err := peerFencer(t, nil).PowerStatus(context.Background(), peerHost); err != nil || p != model.PowerOn {
		t.Fatalf("a refused power off powered it off? status %v %v", p, err)
	}
}

// TestIntegrationBMCDown: a BMC that does not answer (SIGSTOPped ipmi_sim) gives a
// retryable ErrUnavailable within the timeout, and the host keeps running.
func TestIntegrationBMCDown(t *testing.T) {
	f := peerFencer(t, func(b *BMC) { b.Timeout = 2 * time.Second })
	pid := computePID(t)
	run(t, "ipmi/ctl.sh", "bmc-down", "3")
	t.Cleanup(func() { run(t, "ipmi/ctl.sh", "bmc-up", "3") })
	d, err := timed(func() error { return f.PowerOff(context.Background(), peerHost) })
	if !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) {
		t.Fatalf("power off through a BMC that does not answer: %v, want retryable ErrUnavailable", err)
	}
	if d > 3*time.Second || d < 2*time.Second {
		t.Fatalf("gave up after %s, want the timeout (2 s)", d)
	}
	if pid != 0 && !alive(pid) {
		t.Fatalf("nova-compute (pid %d) gone though its BMC did not answer", pid)
	}
	t.Logf("BMC down: %s after %s", err, d.Round(time.Millisecond))
	run(t, "ipmi/ctl.sh", "bmc-up", "3")
	var p model.Power
	if d, err = timed(func() (err error) { p, err = f.PowerStatus(context.Background(), peerHost); return }); err != nil || p != model.PowerOn {
		t.Fatalf("after bmc-up: %v %v", p, err)
	}
	t.Logf("after bmc-up: power %s in %s", p, d.Round(time.Millisecond))
}

// peerGUID is the GUID up.sh gave BMC n (bmc-N/guid: the 16 bytes ipmi_sim sends, in hex).
func peerGUID(t *testing.T, n int) [16]byte {
	t.Helper()
	dir := os.Getenv("IPMI_OS_STATE_DIR")
	if dir == "" {
		dir = "/var/tmp/vigil-ipmi-openstack"
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("bmc-%d", n), "guid"))
	if err != nil {
		t.Fatalf("GUID of BMC %d: %v", n, err)
	}
	var g [16]byte
	s := strings.TrimSpace(string(b))
	for i := range g {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("bmc-%d/guid %q: %v", n, s, err)
		}
		g[i] = byte(v)
	}
	return g
}

// TestIntegrationIdentity: each of the peer's three BMCs answers Get System GUID
// (ipmi_sim has no Get Device GUID) with the GUID up.sh gave it; the three differ,
// and a second read gives the same. A power off through an entry that pins another
// BMC's GUID is refused, terminal, and the compute keeps running.
func TestIntegrationIdentity(t *testing.T) {
	peerFencer(t, nil) // skips without the peer
	var bmcs []BMC
	for n := 1; n <= 3; n++ {
		bmcs = append(bmcs, BMC{Host: fmt.Sprintf("fake-compute-%d", n), Address: "127.0.0.1", Port: 9010 + n,
			Username: "admin", Password: peerPassword, Timeout: 3 * time.Second})
	}
	f, err := New(bmcs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seen := map[string]string{}
	for n := 1; n <= 3; n++ {
		host := fmt.Sprintf("fake-compute-%d", n)
		var id string
		d, err := timed(func() (err error) { id, err = f.Identity(ctx, host); return })
		if err != nil {
			t.Fatalf("Identity of %s: %v", host, err)
		}
		if want := FormatGUID(peerGUID(t, n)); id != want {
			t.Errorf("Identity of %s = %s, want %s (bmc-%d/guid)", host, id, want, n)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s report one GUID %s", other, host, id)
		}
		seen[id] = host
		if again, err := f.Identity(ctx, host); err != nil || again != id {
			t.Errorf("second Identity of %s: %s %v, want %s", host, again, err, id)
		}
		t.Logf("%s: GUID %s in %s", host, id, d.Round(time.Millisecond))
	}

	pid := computePID(t)
	wrong := bmcs[2]
	wrong.GUID = FormatGUID(peerGUID(t, 2)) // BMC 2's GUID pinned on BMC 3's entry
	fw, err := New([]BMC{wrong})
	if err != nil {
		t.Fatal(err)
	}
	err = fw.PowerOff(ctx, peerHost)
	if !errors.Is(err, ErrWrongBMC) || !cloud.IsTerminal(err) {
		t.Fatalf("power off through a BMC whose GUID is not the pinned one: %v, want terminal ErrWrongBMC", err)
	}
	if pid == 0 || !alive(pid) {
		t.Fatalf("nova-compute of %s (pid %d) gone after a refused power off", peerHost, pid)
	}
	if p, err := f.PowerStatus(ctx, peerHost); err != nil || p != model.PowerOn {
		t.Fatalf("power of %s after a refused power off: %v %v", peerHost, p, err)
	}
	t.Logf("pinned GUID of BMC 2 on %s's entry: %v", peerHost, err)
}
