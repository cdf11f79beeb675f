package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/vigil"
)

// startVigil runs a whole Vigil on a small simulated cloud and returns its API URL
// and a server ID.
func startVigil(t *testing.T) (string, []string) {
	t.Helper()
	return startVigilOn(t, []string{"host-0", "host-1", "host-2"}, filepath.Join(t.TempDir(), "v.db"))
}

// startVigilOn is startVigil with the given hosts (one server on each) and store.
func startVigilOn(t *testing.T, hosts []string, db string) (string, []string) {
	t.Helper()
	c := sim.New(sim.DefaultConfig(), time.Now)
	var ids []string
	for h, name := range hosts {
		c.AddHost(name, "a", 10)
		id, _ := c.CreateServer(fmt.Sprintf("vm-%d", h), name)
		ids = append(ids, id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := vigil.Start(ctx, vigil.Options{Listen: "127.0.0.1:0", DB: db,
		Interval: 100 * time.Millisecond, Config: vigil.DefaultConfig(), Compute: c, Fencer: c,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Engine.Tick(ctx); err != nil { // the servers are known before the first request
		t.Fatal(err)
	}
	useToken(t, app)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + app.Addr(), ids
}

func vigilCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCtl(t *testing.T) {
	url, ids := startVigil(t)
	out, err := vigilCmd(t, "ctl", "create-cluster", "web", "--members", ids[0]+","+ids[1], "--server", url)
	if err != nil || !strings.Contains(out, "cluster web created: 2 members") {
		t.Fatalf("create-cluster: %v\n%s", err, out)
	}
	_, err = vigilCmd(t, "ctl", "create-cluster", "db", "--members", "nope", "--server", url)
	if err == nil || !strings.Contains(err.Error(), `members[0]: unknown server "nope"`) {
		t.Fatalf("create-cluster with an unknown server: %v", err)
	}
	out, err = vigilCmd(t, "ctl", "status", "--server", url)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cloud  reachable", "CLUSTER", "web ", "2/2", "host-0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = vigilCmd(t, "ctl", "status", "-o", "json", "--server", url)
	if err != nil {
		t.Fatal(err)
	}
	var v statusView
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Clusters) != 1 || v.Clusters[0].Name != "web" || len(v.Hosts) != 3 {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if _, err := vigilCmd(t, "ctl", "delete-cluster", "web", "--server", url); err != nil {
		t.Fatal(err)
	}
	if _, err := vigilCmd(t, "ctl", "status", "--server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "cannot reach Vigil") {
		t.Fatalf("status against nothing: %v", err)
	}
	if out, err := vigilCmd(t, "version"); err != nil || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("version: %v %q", err, out)
	}
}

// trust-fence against a host whose BMC is not doubted says so (404, the store's
// words), and the route is escaped: a host name with a slash reaches no other route.
func TestCtlTrustFence(t *testing.T) {
	url, _ := startVigil(t)
	_, err := vigilCmd(t, "ctl", "trust-fence", "host-1", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "no fence doubt") {
		t.Fatalf("trust-fence of a trusted BMC: %v, want an error saying there is no doubt", err)
	}
	if _, err := vigilCmd(t, "ctl", "trust-fence", "host-1/../../clusters/web", "--server", url); err == nil {
		t.Fatal("trust-fence with a path in the host name succeeded")
	}
}

// useToken makes an API token on app and gives it to every ctl of the test.
func useToken(t *testing.T, app *vigil.App) {
	t.Helper()
	tok, err := app.CreateToken(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TOKEN", tok)
}
