package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The real binary, as an operator runs it: a bad file prints its mistake on stderr
// (FILE:LINE: path: what is wrong: what is allowed) and exits non-zero; a good one
// prints its summary, without a secret, and exits 0.
func TestPolicyCheckBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the vigil binary")
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(file string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "policy", "check", file)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return stdout.String(), stderr.String(), 0
		case errors.As(err, &exit):
			return stdout.String(), stderr.String(), exit.ExitCode()
		}
		t.Fatalf("run %s: %v", file, err)
		return "", "", -1
	}

	bad := "../../vigil/testdata/policy-bad/07-evacuate-isolated-host.yaml"
	stdout, stderr, code := run(bad)
	want := bad + ":6: policies[0].faults.host-isolated.ladder[0]: evacuate is not allowed for host-isolated"
	if code == 0 || stdout != "" || !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, "vigil: "+bad+": 1 mistake\n") {
		t.Fatalf("bad file: exit %d\nstdout %q\nstderr %q\nwant exit != 0 and stderr starting %q", code, stdout, stderr, want)
	}

	// Several independent mistakes: every one, a line each.
	many := filepath.Join(t.TempDir(), "many.yaml")
	if err := os.WriteFile(many, []byte("limits: {max_concurrent: 0}\npolicies:\n  - name: web\n    priority: 9\n    deadline: 60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(many)
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); code == 0 || len(lines) != 4 ||
		!strings.HasPrefix(lines[0], many+":1: limits.max_concurrent: ") || !strings.HasPrefix(lines[1], many+":4: policies[0].priority: ") ||
		!strings.HasPrefix(lines[2], many+":5: policies[0].deadline: 60 has no unit") {
		t.Fatalf("three mistakes: exit %d, stderr:\n%s", code, stderr)
	}

	good := "../../vigil/testdata/policy-good/full.yaml"
	stdout, stderr, code = run(good)
	if code != 0 || stderr != "" {
		t.Fatalf("good file: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{good + ": valid", "policy web: fence proof bmc-or-fabric, fabric fence on, priority 5",
		"host-isolated  live-migrate → cold-migrate", "crashed        reboot → rebuild (max 3 attempts, deadline 5m0s)",
		"policy manual: fence proof service", "host-dead      notify-only", "fencing: compute-1 by IPMI 10.0.0.11:623 as admin",
		"fencing: compute-2 by Redfish https://10.0.0.22:8443 as operator",
		"agents: compute-1", "masakari: notifications endpoint on, 1 token"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	for _, secret := range []string{"not-a-real-pw", "not-a-real-rf-pw", "4c4c4544", "0123456789abcdef0123", "fedcba9876543210fedc"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("summary shows a secret %q", secret)
		}
	}
}
