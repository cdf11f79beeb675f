package main

import (
	"strings"
	"testing"
)

// `ctl host maintenance on` shows in `ctl status` with its reason; off ends it; an
// unknown host or a bad word is refused with a sentence; `ctl host return` of a
// healthy host not forced down succeeds and says nothing was to undo.
func TestCtlHostMaintenanceAndReturn(t *testing.T) {
	url, _ := startVigil(t)
	out, err := vigilCmd(t, "ctl", "host", "maintenance", "on", "host-1", "--reason", "disk swap", "--server", url)
	if err != nil || !strings.Contains(out, "put host host-1 in maintenance (disk swap)") {
		t.Fatalf("maintenance on: %q, %v", out, err)
	}
	out, err = vigilCmd(t, "ctl", "status", "--server", url)
	if err != nil || !strings.Contains(out, "yes: disk swap") {
		t.Fatalf("status: %q, %v: want host-1 in maintenance, with its reason", out, err)
	}
	if _, err := vigilCmd(t, "ctl", "host", "maintenance", "on", "nope", "--server", url); err == nil || !strings.Contains(err.Error(), "not a compute host") {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := vigilCmd(t, "ctl", "host", "maintenance", "maybe", "host-1", "--server", url); err == nil || !strings.Contains(err.Error(), "want on or off") {
		t.Fatalf("bad word: %v", err)
	}
	out, err = vigilCmd(t, "ctl", "host", "maintenance", "off", "host-1", "--server", url)
	if err != nil || !strings.Contains(out, "ended the maintenance of host host-1") {
		t.Fatalf("maintenance off: %q, %v", out, err)
	}
	out, err = vigilCmd(t, "ctl", "host", "return", "host-2", "--server", url)
	if err != nil || !strings.Contains(out, "not forced down: nothing to undo") || !strings.Contains(out, "host host-2 returned") {
		t.Fatalf("return of a healthy host: %q, %v", out, err)
	}
}
