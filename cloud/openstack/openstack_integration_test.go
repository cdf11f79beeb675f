package openstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
)

func TestIntegrationMicroversion(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	if got := d.Microversion(); got != "2.93" {
		t.Fatalf("negotiated microversion %s, want 2.93 (Nova 26 offers up to 2.93)", got)
	}
	hosts, err := d.ListHosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hosts: %+v", hosts)
	if len(hosts) < 3 {
		t.Fatalf("want the peer's 3 fake computes, got %d", len(hosts))
	}
}

func TestIntegrationWrongCloudsYAML(t *testing.T) {
	peerCloud(t)
	ctx := context.Background()
	dir := t.TempDir()

	missing := filepath.Join(dir, "nope.yaml")
	_, err := New(ctx, Config{CloudName: "vigil-dev", CloudsFile: missing})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing clouds.yaml: error %v does not name %s", err, missing)
	}
	t.Logf("missing file: %v", err)

	real := os.Getenv("OS_CLIENT_CONFIG_FILE")
	if real == "" {
		real = "/var/tmp/vigil-openstack/clouds.yaml"
	}
	_, err = New(ctx, Config{CloudName: "no-such-cloud", CloudsFile: real})
	if err == nil || !strings.Contains(err.Error(), `"no-such-cloud"`) || !strings.Contains(err.Error(), real) ||
		!strings.Contains(err.Error(), "vigil-dev") {
		t.Fatalf("unknown cloud: error %v should name the cloud, the file and the clouds it has", err)
	}
	t.Logf("unknown cloud: %v", err)

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("clouds: [this is: not: yaml"), 0o600)
	_, err = New(ctx, Config{CloudName: "vigil-dev", CloudsFile: bad})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad yaml: error %v does not name %s", err, bad)
	}
	t.Logf("bad yaml: %v", err)

	wrongPW := filepath.Join(dir, "clouds.yaml")
	os.WriteFile(wrongPW, []byte(`clouds:
  vigil-dev:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      password: not-the-password-s3cret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`), 0o600)
	_, err = New(ctx, Config{CloudName: "vigil-dev", CloudsFile: wrongPW})
	if err == nil || !strings.Contains(err.Error(), wrongPW) || !strings.Contains(err.Error(), "vigil-dev") {
		t.Fatalf("wrong password: error %v should name the file and the cloud", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}

func TestIntegrationNovaAPIPaused(t *testing.T) {
	name := peerCloud(t)
	ctx := context.Background()
	d, err := New(ctx, Config{CloudName: name, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ListServers(ctx, time.Time{}); err != nil {
		t.Fatalf("before pause: %v", err)
	}
	peerScript(t, "ctl.sh", "pause", "nova-api")
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			peerScript(t, "ctl.sh", "resume", "nova-api")
		}
	}
	t.Cleanup(resume)
	start := time.Now()
	_, err = d.ListServers(ctx, time.Time{})
	took := time.Since(start)
	if !errors.Is(err, cloud.ErrUnavailable) {
		t.Fatalf("ListServers while nova-api is paused: %v, want ErrUnavailable", err)
	}
	if took > 3*time.Second+time.Second {
		t.Fatalf("ListServers took %v with a 3 s timeout", took)
	}
	t.Logf("paused nova-api: ListServers failed after %v: %v", took.Round(time.Millisecond), err)
	// keep it paused ~10 s: every poll meanwhile fails, as unavailable, in time
	polls := 0
	for time.Since(start) < 10*time.Second {
		t0 := time.Now()
		_, err = d.ListHosts(ctx)
		if !errors.Is(err, cloud.ErrUnavailable) {
			t.Fatalf("ListHosts while nova-api is paused: %v, want ErrUnavailable", err)
		}
		if took := time.Since(t0); took > 4*time.Second {
			t.Fatalf("ListHosts took %v with a 3 s timeout", took)
		}
		polls++
	}
	t.Logf("%d more polls failed as unavailable while paused", polls)
	resume()
	resumedAt := time.Now()
	waitFor(t, 30*time.Second, "ListServers after resume", func() (bool, string) {
		_, err := d.ListServers(ctx, time.Time{})
		return err == nil, "error: " + errString(err)
	})
	t.Logf("ListServers works again %v after resume", time.Since(resumedAt).Round(time.Millisecond))
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
