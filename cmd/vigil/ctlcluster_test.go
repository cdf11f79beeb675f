package main

import (
	"strings"
	"testing"
)

func TestCtlClusterEditAndSources(t *testing.T) {
	url, ids := startVigil(t)
	if out, err := vigilCmd(t, "ctl", "create-cluster", "web", "--members", ids[0], "--server", url); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := vigilCmd(t, "ctl", "cluster", "add", "web", ids[1], ids[2], "--server", url)
	if err != nil || !strings.Contains(out, "3 members") {
		t.Fatalf("cluster add: %v\n%s", err, out)
	}
	out, err = vigilCmd(t, "ctl", "cluster", "remove", "web", ids[0], "--server", url)
	if err != nil || !strings.Contains(out, "2 members") || strings.Contains(out, ids[0]) {
		t.Fatalf("cluster remove: %v\n%s", err, out)
	}
	out, err = vigilCmd(t, "ctl", "cluster", "remove", "web", "no-such", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "remove[0]") {
		t.Fatalf("removing a non-member: %v\n%s, want an error naming remove[0]", err, out)
	}
	_, err = vigilCmd(t, "ctl", "create-cluster", "st", "--stack", "no-such-stack", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "Heat stack no-such-stack") {
		t.Fatalf("create-cluster --stack of a missing stack: %v, want the stack named", err)
	}
	_, err = vigilCmd(t, "ctl", "create-cluster", "st", "--stack", "a", "--metadata", "b", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "one of --stack") {
		t.Fatalf("two sources: %v", err)
	}
}
