package main

import (
	"strings"
	"testing"
)

// `vigil ctl host drain HOST --wait` moves the protected server off the host (the
// simulated cloud live-migrates it) and prints the resolved drain with its step;
// an unknown host is refused with the reason.
func TestCtlHostDrain(t *testing.T) {
	url, ids := startVigil(t)
	if _, err := vigilCmd(t, "ctl", "create-cluster", "web", "--members", ids[0], "--server", url); err != nil {
		t.Fatal(err)
	}
	out, err := vigilCmd(t, "ctl", "host", "drain", "host-0", "--wait", "30s", "--server", url)
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out)
	}
	for _, want := range []string{"drain of host host-0: incident", "resolved", "1 protected servers moved: " + ids[0] + " → host-", "live-migrate " + ids[0] + ": succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Log(out)
	_, err = vigilCmd(t, "ctl", "host", "drain", "no-such-host", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "not a compute host of the cloud") {
		t.Fatalf("drain of an unknown host: %v", err)
	}
}
