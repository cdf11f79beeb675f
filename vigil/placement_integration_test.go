package vigil

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/model"
)

// Placement on the Nova peer (issue 15, criterion 4): a dead host whose servers do
// not all fit elsewhere, and a Nova anti-affinity server group.
//
// The fake driver reports huge hosts, so room is made short with a flavor of
// 400,000 MB of RAM (each host's Placement capacity is 1,199,232 MB: two such
// servers fit on a host, three do not):
//
//	fake-compute-1: A (big, cluster gold, priority 5), B (big, cluster bronze,
//	                priority 1), X (tiny, group member)
//	fake-compute-2: C, D (big, unprotected): full for big servers
//	fake-compute-3: E (big, unprotected), Y (tiny, group member): room for one big
//
// fake-compute-1 is killed. Vigil fences it through its BMC, forces it down and
// evacuates through Nova's scheduler: A (priority 5) takes the one free place (on
// fake-compute-3), B waits with the reason on its cluster; X, whose group member Y
// runs on fake-compute-3 (the host with the most free RAM, where Nova's spreading
// weigher alone would put it), lands elsewhere.
func TestIntegrationPlacementPriorityAndAntiAffinity(t *testing.T) {
	if os.Getenv("VIGIL_IPMI_OPENSTACK") == "" {
		t.Skip("VIGIL_IPMI_OPENSTACK unset: start the BMCs of the OpenStack peer's computes with " +
			"../shared/peers/ipmi/up.sh --openstack and set VIGIL_IPMI_OPENSTACK=1")
	}
	p := newPeer(t)
	restoreCompute(t, p, 1) // last cleanup: after Vigil stops and the servers are deleted
	cfg := ipmiPolicyFile(t)
	for _, h := range []string{host1, host2, host3} {
		if svc, err := p.service(h); err != nil || svc.State != "up" || svc.Forced {
			t.Fatalf("%s before the test: %+v (%v); run test/peers/openstack/up.sh", h, svc, err)
		}
	}
	ctx := context.Background()
	pre := prefix(t)

	// The big flavor and the anti-affinity group, removed after the servers.
	var fl struct {
		Flavor struct {
			ID string `json:"id"`
		} `json:"flavor"`
	}
	if _, err := p.admin.Post(ctx, p.admin.ServiceURL("flavors"), map[string]any{"flavor": map[string]any{
		"name": pre + "-big", "ram": 400000, "vcpus": 1, "disk": 1}}, &fl, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("create the big flavor: %v", err)
	}
	t.Cleanup(func() { _, _ = p.admin.Delete(ctx, p.admin.ServiceURL("flavors", fl.Flavor.ID), nil) })
	var sg struct {
		Group struct {
			ID string `json:"id"`
		} `json:"server_group"`
	}
	if _, err := p.admin.Post(ctx, p.admin.ServiceURL("os-server-groups"), map[string]any{"server_group": map[string]any{
		"name": pre + "-aa", "policies": []string{"anti-affinity"}}}, &sg, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("create the anti-affinity group: %v", err)
	}
	t.Cleanup(func() { _, _ = p.admin.Delete(ctx, p.admin.ServiceURL("os-server-groups", sg.Group.ID), nil) })

	// One at a time, each ACTIVE before the next: the fault of one that fails is shown.
	boot := func(name, flavor, host, group string) string {
		t.Helper()
		body := map[string]any{"server": map[string]any{"name": pre + "-" + name, "flavorRef": flavor, "imageRef": p.image,
			"networks": "none", "availability_zone": "nova:" + host}}
		if group != "" {
			body["os:scheduler_hints"] = map[string]any{"group": group}
		}
		var created struct {
			Server struct {
				ID string `json:"id"`
			} `json:"server"`
		}
		if _, err := p.admin.Post(ctx, p.admin.ServiceURL("servers"), body, &created, nil); err != nil {
			t.Fatalf("boot %s on %s: %v", name, host, err)
		}
		id := created.Server.ID
		waitFor(t, 60*time.Second, "server "+name+" ACTIVE on "+host, func() (bool, string) {
			var doc struct {
				Server struct {
					novaServer
					Fault struct {
						Message string `json:"message"`
					} `json:"fault"`
				} `json:"server"`
			}
			if _, err := p.admin.Get(ctx, p.admin.ServiceURL("servers", id), &doc, nil); err != nil {
				return false, err.Error()
			}
			s := doc.Server.model()
			if s.Status == model.StatusError {
				t.Fatalf("server %s (%s) went to ERROR booting on %s: %s", name, id, host, doc.Server.Fault.Message)
			}
			if s.Status == model.StatusActive && s.TaskState == "" && s.Host != host {
				t.Fatalf("server %s booted on %s, want %s", name, s.Host, host)
			}
			return s.Status == model.StatusActive && s.TaskState == "", s.Status
		})
		return id
	}
	t.Cleanup(func() { p.deleteAll(pre) })
	big := fl.Flavor.ID
	a := boot("a", big, host1, "")
	b := boot("b", big, host1, "")
	boot("c", big, host2, "")
	boot("d", big, host2, "")
	boot("e", big, host3, "")
	x := boot("x", "1", host1, sg.Group.ID)
	y := boot("y", "1", host3, sg.Group.ID)

	v := startVigilWith(t, p, cfg, time.Second)
	for _, c := range []model.Cluster{
		{Name: "gold", Members: []string{a}, Desired: 1, Policy: "default", Priority: 5},
		{Name: "bronze", Members: []string{b}, Desired: 1, Policy: "default", Priority: 1},
		{Name: "pair", Members: []string{x, y}, Desired: 2, Policy: "default"},
	} {
		waitFor(t, 30*time.Second, "cluster "+c.Name+" created", func() (bool, string) {
			err := v.app.Engine.CreateCluster(ctx, c)
			if err != nil && !strings.Contains(err.Error(), "unknown server") {
				t.Fatalf("create cluster %s: %v", c.Name, err)
			}
			return err == nil, fmt.Sprint(err)
		})
	}
	// Vigil's driver reads the group (all projects) and the flavors as Nova has them.
	groups, err := v.drv.ListServerGroups(ctx)
	if err != nil {
		t.Fatalf("server groups: %v", err)
	}
	i := slices.IndexFunc(groups, func(g model.ServerGroup) bool { return g.ID == sg.Group.ID })
	if i < 0 || groups[i].Policy != model.GroupAntiAffinity || !slices.Contains(groups[i].Members, x) || !slices.Contains(groups[i].Members, y) {
		t.Fatalf("server groups read by the driver: %+v, want %s anti-affinity with %s and %s", groups, sg.Group.ID, x, y)
	}
	waitFor(t, 30*time.Second, "Vigil knows the flavor of server a", func() (bool, string) {
		for _, s := range v.app.Engine.Servers() {
			if s.ID == a {
				return s.Flavor == model.Resources{VCPUs: 1, MemoryMB: 400000, DiskGB: 1}, fmt.Sprintf("%+v", s.Flavor)
			}
		}
		return false, "not listed"
	})
	// Vigil sees the room and the group before the fault.
	waitFor(t, 30*time.Second, "Vigil reads Placement's free room of the computes", func() (bool, string) {
		for _, h := range v.app.Engine.Hosts() {
			if h.Name == host3 {
				return h.FreeKnown && h.Free.MemoryMB >= 400000 && h.Free.MemoryMB < 800000, fmt.Sprintf("%s free %+v known %v", h.Name, h.Free, h.FreeKnown)
			}
		}
		return false, "no " + host3
	})

	killed := killComputes(t, 1)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Vigil's timeline from the kill:\n%s", v.timelineSince(killed))
		}
	})
	activeAt := allActiveElsewhere(t, p, []string{a, x}, host1, 150*time.Second)
	var waitingAt time.Time
	var status model.ClusterStatus
	waitFor(t, 30*time.Second, "cluster bronze says its server waits for capacity", func() (bool, string) {
		for _, c := range v.app.Engine.Clusters() {
			if c.Name == "bronze" {
				status = c
			}
		}
		if strings.Contains(status.Reason, "capacity-short") && strings.Contains(status.Reason, b) {
			waitingAt = time.Now()
			return true, ""
		}
		return false, fmt.Sprintf("%s %q", status.Health, status.Reason)
	})
	t.Logf("cluster bronze: %s: %s", status.Health, status.Reason)
	// Let a few more reconciles pass: B must still not be moved.
	<-time.After(5 * time.Second)

	sa, sx, sy, sb := p.mustServer(a), p.mustServer(x), p.mustServer(y), p.mustServer(b)
	t.Logf("after the fault: a %s@%s, b %s@%s, x %s@%s, y %s@%s\nVigil's timeline from the kill:\n%s",
		sa.Status, sa.Host, sb.Status, sb.Host, sx.Status, sx.Host, sy.Status, sy.Host, v.timelineSince(killed))
	if sx.Host == sy.Host {
		t.Fatalf("anti-affinity members %s and %s share host %s", x, y, sx.Host)
	}
	if sa.Host != host3 {
		t.Errorf("server a (priority 5) on %s, want %s (the only host with room)", sa.Host, host3)
	}
	if n := evacuations(t, v.drv, b); n != 0 || sb.Host != host1 {
		t.Fatalf("server b (priority 1) was evacuated %d times (on %s), want it left waiting on %s", n, sb.Host, host1)
	}
	in, ok := v.incident("host/" + host1)
	if !ok || in.State != model.IncidentWaiting || !strings.Contains(in.Reason, "capacity-short") {
		t.Fatalf("incident of %s: %s %q, want waiting for capacity", host1, in.State, in.Reason)
	}
	for _, st := range in.Steps {
		if st.Action == model.ActEvacuate && st.Target != "" {
			t.Errorf("evacuation of %s named host %s: Nova's scheduler should place it", st.Server, st.Target)
		}
	}
	var order []string
	for _, st := range in.Steps {
		if st.Action == model.ActEvacuate && !slices.Contains(order, st.Server) {
			order = append(order, st.Server)
		}
	}
	if len(order) != 2 || order[0] != a {
		t.Errorf("evacuation order %v, want a (priority 5) first, then x; never b", order)
	}
	t.Logf("kill of %s -> a and x ACTIVE elsewhere %.1f s -> bronze says why b waits %.1f s",
		host1, activeAt.Sub(killed).Seconds(), waitingAt.Sub(killed).Seconds())
}
