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
	t.Parallel()
	var out bytes.Buffer
	rep, err := Demo(context.Background(), DemoOptions{Listen: "127.0.0.1:0", Seed: 1, Duration: 20 * time.Second,
		Hosts: 8, Servers: 40, FaultEvery: 6 * time.Second, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if rep.ServerRecoveries < 1 || rep.HostEvacuations < 1 || len(rep.DoubleRunning) > 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	for _, want := range []string{"FAULT", "fence host-", "→ evacuate", "resolved: host fenced", "after the fault", "Never two copies: held"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("timeline lacks %q:\n%s", want, out.String())
		}
	}
	if rep.Calls["list-servers"] == 0 || rep.Calls["list-servers"] != rep.Calls["list-hosts"] {
		t.Fatalf("calls %v", rep.Calls)
	}
}

// Half a minute of the demo shows what only the host agents see: a hung guest (Nova
// says ACTIVE) judged by its silent guest agent and cured by a hard reboot, never a
// soft one; a host cut off its management network while its storage path carries
// its beats, judged isolated and never fenced; a power loss proven by the BMC.
func TestDemoShowsAgentSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 32 s of wall time")
	}
	t.Parallel()
	var out bytes.Buffer
	rep, err := Demo(context.Background(), DemoOptions{Listen: "127.0.0.1:0", Seed: 7, Duration: 32 * time.Second,
		Hosts: 8, Servers: 40, FaultEvery: 6 * time.Second, Out: &out})
	timeline := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, timeline)
	}
	if len(rep.DoubleRunning) > 0 || len(rep.FencedIsolated) > 0 {
		t.Fatalf("invariants broken: report %+v\n%s", rep, timeline)
	}

	hung := faultSubject(t, timeline, "guest hung")
	if !hasLine(timeline, "INCIDENT", "server/"+hung, "resolved: server ACTIVE again after hard-reboot") {
		t.Errorf("hung guest %s not shown recovered by a hard reboot:\n%s", hung, timeline)
	}
	if hasLine(timeline, "STEP", "server/"+hung, "→ reboot ") {
		t.Errorf("hung guest %s was soft-rebooted (its frozen kernel ignores that):\n%s", hung, timeline)
	}
	if rep.Recovered["hang"] < 1 {
		t.Errorf("report counts no hung guest recovered: %+v", rep)
	}

	cut := faultSubject(t, timeline, "cut off its management network")
	if !hasLine(timeline, "VERDICT", "host/"+cut, "host isolated:") {
		t.Errorf("host %s cut off its management network not judged isolated:\n%s", cut, timeline)
	}
	if hasLine(timeline, "STEP", "host/"+cut, "fence ") || !hasLine(timeline, "REPAIR", cut, "it was NOT fenced") {
		t.Errorf("isolated host %s fenced, or not shown left alone:\n%s", cut, timeline)
	}
	if rep.IsolatedNotFenced < 1 {
		t.Errorf("report counts no isolated host left alone: %+v", rep)
	}

	if rep.DeadByBMC < 1 || !strings.Contains(timeline, "resolved: host fenced") {
		t.Errorf("no host shown dead by its BMC and recovered: %+v\n%s", rep, timeline)
	}
	if !strings.Contains(timeline, "Seen by the host agents: ") {
		t.Errorf("the summary does not mention the agents' faults:\n%s", timeline)
	}
}

// faultSubject returns the server ID or host name of the first FAULT line that
// says what.
func faultSubject(t *testing.T, timeline, what string) string {
	t.Helper()
	for line := range strings.Lines(timeline) {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "FAULT" && strings.Contains(line, what) {
			return f[2]
		}
	}
	t.Fatalf("no fault %q injected:\n%s", what, timeline)
	return ""
}

// hasLine reports whether a timeline line of the given label and subject says what.
func hasLine(timeline, label, subject, what string) bool {
	for line := range strings.Lines(timeline) {
		if f := strings.Fields(line); len(f) > 2 && f[1] == label && f[2] == subject && strings.Contains(line, what) {
			return true
		}
	}
	return false
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
		{"policies:\n  - name: x\n    step_timeout: -1s\n", "policy file:3: policies[0].step_timeout: -1s is not positive"},
		{"policies:\n  - name: x\n    stepTimeout: 1s\n", "policy file:3: policies[0].stepTimeout: unknown field (did you mean step_timeout?): known fields are name, ladder, step_timeout"},
		{"policies:\n  - ladder: [reboot]\n", "policy file:2: policies[0].name: missing"},
		{"limits: {brake_fraction: 2}\n", "limits.brake_fraction"},
		{"policies: [\n", "the file is not valid YAML"},
	}
	for _, b := range bad {
		if _, err := ParseConfig([]byte(b.src)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want it to mention %q", b.src, err, b.want)
		}
	}
}
