package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The openstack-style verbs against a running Vigil: list and show of clusters,
// hosts, servers and incidents in each format, with -c, and the old commands still there.
func TestCtlListShow(t *testing.T) {
	url, ids := startVigil(t)
	if out, err := vigilCmd(t, "ctl", "create-cluster", "web", "--members", ids[0]+","+ids[1], "--server", url); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := vigilCmd(t, "ctl", "cluster", "list", "--server", url)
	if err != nil || !strings.Contains(out, "| NAME | HEALTH") || !strings.Contains(out, "| web  |") {
		t.Fatalf("cluster list: %v\n%s", err, out)
	}
	out, err = vigilCmd(t, "ctl", "cluster", "show", "web", "-f", "json", "--server", url)
	var cl map[string]any
	if err != nil || json.Unmarshal([]byte(out), &cl) != nil || cl["name"] != "web" || cl["healthy"] != 2.0 || len(cl["members"].([]any)) != 2 {
		t.Fatalf("cluster show -f json: %v\n%s", err, out)
	}
	out, err = vigilCmd(t, "ctl", "cluster", "list", "-f", "value", "-c", "name", "-c", "desired", "--server", url)
	if err != nil || out != "web 2\n" {
		t.Fatalf("cluster list -f value -c name -c desired: %v %q, want \"web 2\\n\"", err, out)
	}
	if _, err = vigilCmd(t, "ctl", "cluster", "show", "nope", "--server", url); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("cluster show of a missing cluster: %v", err)
	}
	out, err = vigilCmd(t, "ctl", "host", "list", "-f", "yaml", "--server", url)
	var hosts []map[string]any
	if err != nil || yaml.Unmarshal([]byte(out), &hosts) != nil || len(hosts) != 3 || hosts[1]["name"] != "host-1" || hosts[1]["segment"] != "a" {
		t.Fatalf("host list -f yaml: %v\n%s", err, out)
	}
	out, err = vigilCmd(t, "ctl", "host", "show", "host-2", "-f", "value", "-c", "name", "-c", "segment", "--server", url)
	if err != nil || out != "host-2\na\n" {
		t.Fatalf("host show -c name -c segment -f value: %v %q", err, out)
	}
	out, err = vigilCmd(t, "ctl", "server", "list", "-f", "value", "-c", "id", "--server", url)
	if got := strings.Fields(out); err != nil || !slices.Equal(got, ids) {
		t.Fatalf("server list -c id: %v %v, want %v", err, got, ids)
	}
	out, err = vigilCmd(t, "ctl", "server", "show", "vm-1", "-f", "value", "-c", "id", "-c", "host", "--server", url)
	if err != nil || out != ids[1]+"\nhost-1\n" {
		t.Fatalf("server show vm-1 (by name): %v %q", err, out)
	}
	out, err = vigilCmd(t, "ctl", "incident", "list", "-f", "json", "--server", url)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("incident list with none: %v %q", err, out)
	}
	if _, err = vigilCmd(t, "ctl", "incident", "show", "x1", "--server", url); err == nil || !strings.Contains(err.Error(), "want a number") {
		t.Fatalf("incident show x1: %v", err)
	}
	_, err = vigilCmd(t, "ctl", "host", "list", "-c", "colour", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "-c colour: no such column; the columns are: name, segment, service,") {
		t.Fatalf("host list -c colour: %v", err)
	}
	// The older commands and -o still work, and -f applies to them.
	if out, err = vigilCmd(t, "ctl", "status", "-f", "yaml", "--server", url); err != nil || !strings.Contains(out, "clusters:\n  - name: web\n") {
		t.Fatalf("status -f yaml: %v\n%s", err, out)
	}
	if out, err = vigilCmd(t, "ctl", "incidents", "-o", "json", "--server", url); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("incidents -o json: %v %q", err, out)
	}
	if _, err = vigilCmd(t, "ctl", "status", "-f", "value", "--server", url); err == nil || !strings.Contains(err.Error(), "only list and show") {
		t.Fatalf("status -f value: %v", err)
	}
}

// Completion of cluster and host names asks the API (what `vigil completion bash`
// runs when TAB is pressed).
func TestCtlCompletion(t *testing.T) {
	url, ids := startVigil(t)
	for i, name := range []string{"web", "db", "wiki"} {
		if out, err := vigilCmd(t, "ctl", "create-cluster", name, "--members", ids[i], "--server", url); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"cluster", "show", "w"}, []string{"web", "wiki"}},
		{[]string{"delete-cluster", ""}, []string{"db", "web", "wiki"}},
		{[]string{"cluster", "add", "d"}, []string{"db"}},
		{[]string{"host", "show", "host-"}, []string{"host-0", "host-1", "host-2"}},
		{[]string{"host", "drain", "host-1"}, []string{"host-1"}},
	} {
		args := append([]string{"__complete", "ctl", "--server", url}, c.args...)
		out, err := vigilCmd(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "Completion ended") {
				got = append(got, strings.SplitN(line, "\t", 2)[0])
			}
		}
		if slices.Sort(got); !slices.Equal(got, c.want) {
			t.Errorf("completing %v: %v, want %v\n%s", c.args, got, c.want, out)
		}
	}
}
