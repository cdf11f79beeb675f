package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deployEnv reads deploy/vigil.env (KEY=VALUE lines, # comments, optional quotes)
// as systemd's EnvironmentFile would.
func deployEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../deploy/vigil.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("deploy/vigil.env: %q is not KEY=VALUE", line)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// The example policy file is one `vigil policy check` accepts, with the secrets
// the example environment file gives: neither can rot.
func TestDeployPolicyFile(t *testing.T) {
	for k, v := range deployEnv(t) {
		t.Setenv(k, v)
	}
	var out, errs strings.Builder
	if err := checkPolicy("../../deploy/vigil.yaml", &out, &errs); err != nil {
		t.Fatalf("deploy/vigil.yaml: %v\n%s", err, errs.String())
	}
	for _, want := range []string{"policy database:", "fencing: compute-1 by IPMI", "fencing: compute-2 by Redfish", "agents: compute-1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary of deploy/vigil.yaml lacks %q:\n%s", want, out.String())
		}
	}
}

// systemd-analyze verify accepts the unit (Debian's systemd package; skipped
// without it). The binary it runs is this test's, the user root: the checks are
// of the unit's own directives.
func TestDeploySystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the unit is not verified")
	}
	unit, err := os.ReadFile("../../deploy/vigil.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "vigil.env")
	if err := os.WriteFile(env, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("/usr/local/bin/vigil", self, "/etc/vigil/vigil.env", env, "User=vigil", "User=root", "Group=vigil", "Group=root").Replace(string(unit))
	path := filepath.Join(dir, "vigil.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", path)
	out, err := cmd.CombinedOutput()
	var problems []string
	for _, line := range strings.Split(string(out), "\n") {
		// Verify also checks the units it pulls in (network-online.target, ...): only
		// lines about ours count.
		if strings.Contains(line, "vigil.service") {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Fatalf("systemd-analyze verify deploy/vigil.service: %v\n%s", err, out)
	}
}
