package vigil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A policy file gives each agent its own token (from the environment or a file) and
// each policy its probes and its ladders per fault; every mistake is refused with the
// field's path.
func TestParseConfigAgentsAndProbes(t *testing.T) {
	t.Setenv("TOK_A", "0123456789abcdef-a")
	file := filepath.Join(t.TempDir(), "b.token")
	if err := os.WriteFile(file, []byte("0123456789abcdef-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`
agents:
  interval: 500ms
  hosts:
    - {name: host-a, token_env: TOK_A}
    - {name: host-b, token_file: ` + file + `}
policies:
  - name: web
    ladders: {hung: [hard-reboot], app-failed: [reboot, rebuild]}
    guest_agent: {interval: 2s, timeout: 1s, failures: 3}
    apps:
      - {name: heartbeat, kind: command, command: [pidof, heartbeat], interval: 2s, timeout: 1s, failures: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agents.Interval != 500*time.Millisecond || cfg.Agents.Tokens["host-a"] != "0123456789abcdef-a" || cfg.Agents.Tokens["host-b"] != "0123456789abcdef-b" {
		t.Fatalf("agents: %+v", cfg.Agents)
	}
	web := cfg.Policies["web"]
	if got := web.LadderFor(model.FaultHung); len(got) != 1 || got[0] != model.ActHardReboot {
		t.Fatalf("hung ladder %v, want [hard-reboot]", got)
	}
	if got := web.LadderFor(model.FaultCrashed); len(got) != len(model.DefaultPolicy().LadderFor(model.FaultCrashed)) {
		t.Fatalf("crashed ladder %v, want the default's", got)
	}
	if web.GuestAgent == nil || web.GuestAgent.Kind != model.ProbeGuestAgent || web.GuestAgent.Failures != 3 {
		t.Fatalf("guest agent probe: %+v", web.GuestAgent)
	}
	if len(web.Apps) != 1 || web.Apps[0].Command[0] != "pidof" {
		t.Fatalf("apps: %+v", web.Apps)
	}
	if d := model.DefaultPolicy(); d.Ladders[model.FaultHung] != nil && d.Ladders[model.FaultHung][0] == model.ActHardReboot && len(d.Ladders[model.FaultHung]) == 1 {
		t.Fatalf("the default policy's ladders were changed by a policy file: %v", d.Ladders)
	}

	for _, c := range []struct{ yaml, want string }{
		{"agents: {hosts: [{name: h, token_env: NOPE_UNSET}]}", "agents.hosts[0].token_env: environment variable NOPE_UNSET is not set"},
		{"agents: {hosts: [{name: h, token: short}]}", "too short"},
		{"agents: {hosts: [{token: 0123456789abcdefgh}]}", "agents.hosts[0].name"},
		{"agents: {hosts: [{name: a, token: 0123456789abcdefgh}, {name: b, token: 0123456789abcdefgh}]}", "host b has the token of host a"},
		{"agents: {hosts: [{name: a, token: 0123456789abcdefgh, token_env: X}]}", "give only one way"},
		{"agents: {interval: 0s}", "agents.interval"},
		{"agents: {colour: red}", "agents.colour: unknown field"},
		{"policies: [{name: p, ladders: {sleepy: [reboot]}}]", `policies[0].ladders.sleepy: unknown fault: known faults are crashed`},
		{"policies: [{name: p, ladders: {hung: [dance]}}]", `ladders.hung[0]: unknown action "dance"`},
		{"policies: [{name: p, guest_agent: {interval: 1s, timeout: 2s, failures: 3}}]", "policies[0].guest_agent.timeout: 2s is longer than the interval 1s"},
		{"policies: [{name: p, apps: [{name: x, kind: tcp, interval: 1s, timeout: 1s, failures: 1}]}]", "policies[0].apps[0].target: missing: a tcp probe needs one"},
		{"policies: [{name: p, apps: [{name: x, kind: ping, interval: 1s, timeout: 1s, failures: 1}]}]", `apps[0].kind: unknown kind "ping": allowed are guest-agent, tcp, http, command`},
	} {
		_, err := ParseConfig([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.yaml, err, c.want)
		}
	}
}

// A token never appears in an error, whatever goes wrong around it.
func TestAgentTokenNeverInErrors(t *testing.T) {
	_, err := ParseConfig([]byte("agents: {hosts: [{name: a, token: s3cr3t-s3cr3t-s3cr3t}, {name: b, token: s3cr3t-s3cr3t-s3cr3t}]}"))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v: want a refusal that does not show the token", err)
	}
}
