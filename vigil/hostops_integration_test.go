package vigil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// apiPost posts body to a running Vigil's API, as `vigil ctl` does.
func apiPost(t *testing.T, r *vigilRun, path, body string, out any) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Minute}
	token, err := r.app.CreateToken(context.Background(), fmt.Sprintf("test-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.app.Addr()+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, data)
	}
}

// On the Nova peer with its BMCs: a host put in maintenance through the API stays in
// maintenance across a restart of Vigil (a new process's App on the same journal);
// its compute killed then, Vigil neither fences nor evacuates it and its incident
// says the host is in maintenance. Maintenance off: Vigil fences (IPMI confirms the
// power off) and evacuates. Then `host return`: refused while the BMC says off;
// once the compute is started again, Vigil waits for its heartbeat, forces the
// service up (retrying while Nova refuses: 'done' evacuation records remain) and
// Nova shows it up, not forced down.
func TestIntegrationMaintenanceAndHostReturn(t *testing.T) {
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"../shared/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1")
	}
	p := newPeer(t)
	restoreCompute(t, p, 3)
	cfg := ipmiPolicyFile(t)
	if svc, err := p.service(host3); err != nil || svc.State != "up" || svc.Forced {
		t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", host3, svc, err)
	}
	pre := prefix(t)
	p.boot(pre, 1, host3, false)
	ids := p.waitBooted(pre, 1)
	t.Cleanup(func() { p.deleteAll(pre) })
	db := filepath.Join(t.TempDir(), "vigil.db")
	fencer, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	v := startVigil(t, p, runOpts{db: db, interval: time.Second, config: &cfg, fencer: fencer})
	v.protect("pinned", "default", ids...)

	var mres map[string]any
	apiPost(t, v, "/v1/hosts/"+host3+"/maintenance", `{"on": true, "reason": "integration test"}`, &mres)
	v.stop()
	restarted := time.Now()
	v = startVigil(t, p, runOpts{db: db, interval: time.Second, config: &cfg, fencer: fencer})
	for _, h := range v.app.Engine.Hosts() {
		if h.Name == host3 && (h.Operator == nil || h.Operator.Reason != "integration test" || !h.Maintenance) {
			t.Fatalf("after the restart %s is %+v, want in maintenance (integration test)", host3, h)
		}
	}
	t.Logf("Vigil restarted in %.1f s; %s still in maintenance", time.Since(restarted).Seconds(), host3)

	killed := time.Now()
	peerScript(t, "ctl.sh", "kill-compute", "3")
	var esc seen
	waitFor(t, 90*time.Second, host3+"'s incident escalated: in maintenance", func() (bool, string) {
		var ok bool
		esc, ok = v.find(isEvent("incident", "host/"+host3, "is in maintenance and looks failed"))
		var verdict string
		for _, h := range v.app.Engine.Hosts() {
			if h.Name == host3 {
				verdict = fmt.Sprintf("%s %s %v: %s", h.Service, h.Verdict.Host, h.Verdict.Rule, strings.Join(h.Verdict.Evidence, "; "))
			}
		}
		return ok, verdict + "\n" + v.timelineSince(killed)
	})
	t.Logf("compute killed -> incident escalated (in maintenance, not recovered) %.1f s: %s", esc.At.Sub(killed).Seconds(), esc.Message)
	time.Sleep(10 * time.Second) // nothing may follow
	if in, _ := v.incident("host/" + host3); len(in.Steps) > 0 {
		t.Fatalf("steps taken on a host in maintenance:\n%s", describeSteps(in.Steps))
	}
	if offs := bmcPowerOffs(t, 3, killed); len(offs) > 0 {
		t.Fatalf("BMC 3 asked to power off at %v, the host in maintenance", offs)
	}
	if svc, _ := p.service(host3); svc.Forced {
		t.Fatalf("%s forced down while in maintenance", host3)
	}
	if s := p.mustServer(ids[0]); s.Host != host3 {
		t.Fatalf("server moved from a host in maintenance: %+v", s)
	}

	off := time.Now()
	apiPost(t, v, "/v1/hosts/"+host3+"/maintenance", `{"on": false}`, &mres)
	activeAt := allActiveElsewhere(t, p, ids, host3, 120*time.Second)
	v.waitEvent(30*time.Second, host3+" incident resolved", isEvent("incident", "host/"+host3, "resolved"))
	t.Logf("maintenance off -> server ACTIVE elsewhere %.1f s", activeAt.Sub(off).Seconds())

	var ret model.HostReturn
	apiPost(t, v, "/v1/hosts/"+host3+"/return", "", &ret)
	if ret.Returned || len(ret.Left) != 1 || !strings.Contains(ret.Left[0], "BMC says power off") {
		t.Fatalf("return while the BMC says off: %+v", ret)
	}
	started := time.Now()
	peerScript(t, "ctl.sh", "start-compute", "3")
	asked := time.Now()
	apiPost(t, v, "/v1/hosts/"+host3+"/return", "", &ret)
	took := time.Since(asked)
	t.Logf("compute started (%.1f s) -> host return answered in %.1f s:\n  done: %s\n  left: %s", asked.Sub(started).Seconds(), took.Seconds(),
		strings.Join(ret.Done, "\n        "), strings.Join(ret.Left, "\n        "))
	if !ret.Returned || len(ret.Left) != 0 {
		t.Fatalf("host return: %+v", ret)
	}
	waitFor(t, 30*time.Second, host3+" up and not forced down in Nova", func() (bool, string) {
		svc, err := p.service(host3)
		return err == nil && svc.State == "up" && !svc.Forced, fmt.Sprintf("%+v %v", svc, err)
	})
	t.Logf("from start-compute to Nova showing %s up, not forced down: %.1f s", host3, time.Since(started).Seconds())
	// Idempotent: asked again, nothing is left to undo.
	apiPost(t, v, "/v1/hosts/"+host3+"/return", "", &ret)
	if !ret.Returned || !strings.Contains(strings.Join(ret.Done, " "), "not forced down: nothing to undo") {
		t.Fatalf("second return: %+v", ret)
	}
}
