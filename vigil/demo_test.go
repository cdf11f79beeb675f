package vigil

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo a new user runs first must show a server recovery and a host evacuation,
// and never two copies of a server.
func TestDemoRecoversServersAndHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 20 s of wall time")
	}
	var out bytes.Buffer
	rep, err := Demo(context.Background(), DemoOptions{Listen: "127.0.0.1:0", Seed: 1, Duration: 20 * time.Second,
		Hosts: 8, Servers: 40, FaultEvery: 6 * time.Second, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if rep.ServerRecoveries < 1 || rep.HostEvacuations < 1 || len(rep.DoubleRunning) > 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	for _, want := range []string{"FAULT", "→ fence", "→ evacuate", "resolved: host fenced", "after the fault", "Never two copies: held"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("timeline lacks %q:\n%s", want, out.String())
		}
	}
	if rep.Calls["list-servers"] == 0 || rep.Calls["list-servers"] != rep.Calls["list-hosts"] {
		t.Fatalf("calls %v", rep.Calls)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
limits: {max_concurrent: 5}
policies:
  - name: gentle
    ladder: [reboot, rebuild]
    step_timeout: 30s
    service_fence_only: true
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policies["gentle"]
	if len(p.Ladder) != 2 || p.StepTimeout != 30*time.Second || !p.ServiceFenceOnly || p.MaxAttempts != 8 || cfg.Limits.MaxConcurrent != 5 {
		t.Fatalf("parsed %+v %+v", p, cfg.Limits)
	}
	if _, ok := cfg.Policies["default"]; !ok {
		t.Fatal("built-in default policy lost")
	}
	bad := []struct{ src, want string }{
		{"policies:\n  - name: x\n    ladder: [reboot, pray]\n", `ladder[1]: unknown action "pray"`},
		{"policies:\n  - name: x\n    step_timeout: -1s\n", "step_timeout: must be positive"},
		{"policies:\n  - name: x\n    stepTimeout: 1s\n", "field stepTimeout not found"},
		{"policies:\n  - ladder: [reboot]\n", "name: must not be empty"},
		{"limits: {brake_fraction: 2}\n", "limits.brake_fraction"},
		{"policies: [\n", "yaml"},
	}
	for _, b := range bad {
		if _, err := ParseConfig([]byte(b.src)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want it to mention %q", b.src, err, b.want)
		}
	}
}
