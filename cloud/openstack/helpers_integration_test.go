package openstack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/vigil-ha/vigil/model"
)

// Integration tests run against the OpenStack peer (test/peers/openstack/up.sh).
// They boot their own servers with a unique name prefix and delete them.

func peerCloud(t *testing.T) string {
	t.Helper()
	name := os.Getenv("VIGIL_OPENSTACK_CLOUD")
	if name == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD unset: start the peer with test/peers/openstack/up.sh " +
			"and source test/peers/openstack/env.sh to run the OpenStack integration tests")
	}
	return name
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// peerCtl runs test/peers/openstack/ctl.sh (or up.sh) with args.
func peerScript(t *testing.T, script string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "test", "peers", "openstack", script), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	t.Logf("%s %v: %s", script, args, strings.TrimSpace(lastLines(string(out), 3)))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func newDriver(t *testing.T, cloudName string) *Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, Config{CloudName: cloudName, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("New(%s): %v", cloudName, err)
	}
	return d
}

func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("vt-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%1e6)
}

// tinyImage returns the ID of the peer's "tiny" image (from glance).
func tinyImage(t *testing.T, d *Driver) string {
	t.Helper()
	img, err := gopenstack.NewImageV2(d.compute.ProviderClient, d.eo)
	if err != nil {
		t.Fatalf("image endpoint: %v", err)
	}
	var doc struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	if _, err := img.Get(context.Background(), img.ServiceURL("images")+"?name=tiny", &doc, nil); err != nil {
		t.Fatalf("find image tiny: %v", err)
	}
	if len(doc.Images) == 0 {
		t.Fatal("image tiny not found: run test/peers/openstack/up.sh")
	}
	return doc.Images[0].ID
}

// bootServers boots n servers named prefix-1..n (one request, min_count) and
// registers their deletion; it returns their IDs once all are ACTIVE.
func bootServers(t *testing.T, d *Driver, prefix string, n int, zone string) []string {
	t.Helper()
	return bootServersAs(t, d, d, prefix, n, zone)
}

// bootServersAs boots with creator's credentials and watches with admin's.
func bootServersAs(t *testing.T, d, creator *Driver, prefix string, n int, zone string) []string {
	t.Helper()
	ctx := context.Background()
	srv := map[string]any{"name": prefix, "flavorRef": "1", "imageRef": tinyImage(t, d),
		"networks": "none", "min_count": n, "max_count": n}
	if zone != "" {
		srv["availability_zone"] = zone
	}
	if err := creator.send(ctx, "test-create", http.MethodPost, creator.compute.ServiceURL("servers"), map[string]any{"server": srv}); err != nil {
		t.Fatalf("boot %d servers %s: %v", n, prefix, err)
	}
	var ids []string
	t.Cleanup(func() { deleteServers(t, d, prefix) })
	waitFor(t, 90*time.Second, fmt.Sprintf("%d servers %s ACTIVE", n, prefix), func() (bool, string) {
		ss := findServers(t, d, prefix)
		ids = ids[:0]
		active := 0
		for _, s := range ss {
			ids = append(ids, s.ID)
			if s.Status == model.StatusActive {
				active++
			}
			if s.Status == model.StatusError {
				t.Fatalf("server %s (%s) went to ERROR while booting", s.Name, s.ID)
			}
		}
		return len(ss) == n && active == n, fmt.Sprintf("%d found, %d active", len(ss), active)
	})
	return ids
}

// findServers lists the servers whose name starts with prefix (not counted as polls).
func findServers(t *testing.T, d *Driver, prefix string) []model.Server {
	t.Helper()
	q := url.Values{"all_tenants": {"1"}, "name": {"^" + prefix}}
	var page serverPage
	if err := d.get(context.Background(), "test-find", d.compute.ServiceURL("servers", "detail")+"?"+q.Encode(), &page); err != nil {
		t.Fatalf("find servers %s: %v", prefix, err)
	}
	var out []model.Server
	for _, ns := range page.Servers {
		s := model.Server{ID: ns.ID, Name: ns.Name, Host: ns.Host, Status: ns.Status}
		if ns.TaskState != nil {
			s.TaskState = *ns.TaskState
		}
		out = append(out, s)
	}
	return out
}

func getServer(t *testing.T, d *Driver, id string) model.Server {
	t.Helper()
	var doc struct {
		Server novaServer `json:"server"`
	}
	if err := d.get(context.Background(), "test-show", d.compute.ServiceURL("servers", id), &doc); err != nil {
		t.Fatalf("show server %s: %v", id, err)
	}
	s := model.Server{ID: doc.Server.ID, Name: doc.Server.Name, Host: doc.Server.Host, Status: doc.Server.Status,
		Image: imageID(doc.Server.Image)}
	if doc.Server.TaskState != nil {
		s.TaskState = *doc.Server.TaskState
	}
	return s
}

// deleteServers deletes every server named prefix* at once, then polls until
// none is left.
func deleteServers(t *testing.T, d *Driver, prefix string) {
	ctx := context.Background()
	ss := findServers(t, d, prefix)
	for _, s := range ss {
		if err := d.send(ctx, "test-delete", http.MethodDelete, d.compute.ServiceURL("servers", s.ID), nil); err != nil {
			t.Logf("delete %s: %v", s.ID, err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if len(findServers(t, d, prefix)) == 0 {
			return
		}
		poll()
	}
	t.Logf("servers %s still listed 90 s after delete", prefix)
}

// resetState puts a server into state; "error" goes through the driver's own
// ResetState, so that the tests exercise it against Nova.
func resetState(t *testing.T, d *Driver, id, state string) {
	t.Helper()
	if state == "error" {
		if err := d.ResetState(context.Background(), id); err != nil {
			t.Fatalf("ResetState %s: %v", id, err)
		}
		return
	}
	err := d.send(context.Background(), "test-reset-state", http.MethodPost, d.compute.ServiceURL("servers", id, "action"),
		map[string]any{"os-resetState": map[string]string{"state": state}})
	if err != nil {
		t.Fatalf("os-resetState %s %s: %v", id, state, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, within, last)
		}
		poll()
	}
}

func waitStatus(t *testing.T, d *Driver, id, status string, within time.Duration) model.Server {
	t.Helper()
	var s model.Server
	waitFor(t, within, fmt.Sprintf("server %s %s", id, status), func() (bool, string) {
		s = getServer(t, d, id)
		return s.Status == status && s.TaskState == "", s.Status + "/" + s.TaskState
	})
	return s
}

// poll is the pause between two polls of a condition.
func poll() { <-time.After(500 * time.Millisecond) }
