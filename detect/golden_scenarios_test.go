package detect

import (
	"time"

	"github.com/vigil-ha/vigil/model"
)

const s = time.Second

func power(offAt time.Duration) func(time.Duration) model.Power {
	return func(t time.Duration) model.Power {
		if t >= offAt {
			return model.PowerOff
		}
		return model.PowerOn
	}
}

func domainWith(id string, f func(*model.Domain)) func(time.Duration) []model.Domain {
	return func(time.Duration) []model.Domain {
		d := runningDomain(id)
		f(&d)
		return []model.Domain{d}
	}
}

// after switches a host's domains at a time.
func after(at time.Duration, before, then func(time.Duration) []model.Domain) func(time.Duration) []model.Domain {
	return func(t time.Duration) []model.Domain {
		if t >= at {
			return then(t)
		}
		return before(t)
	}
}

func goldenScenarios() []*golden {
	var all []*golden

	g := world("up", "Three hosts, agents heard on both paths, Nova up, BMCs on: every host up, every agent heard, every server healthy.", 3)
	g.span = 20 * s
	all = append(all, g)

	g = world("suspect", "A masakari hostmonitor reports h1's cluster node offline (COMPUTE_HOST STOPPED) at 20 s, then\nback (STARTED) at 40 s: h1 is suspect meanwhile, never failed on that alone.", 2)
	g.span = 50 * s
	g.monitors[20*s] = []model.MonitorReport{{ID: "n1", Type: "COMPUTE_HOST", Host: "h1", Event: "STOPPED", Payload: map[string]string{"host_status": "NORMAL", "cluster_status": "OFFLINE"}}}
	g.monitors[40*s] = []model.MonitorReport{{ID: "n2", Type: "COMPUTE_HOST", Host: "h1", Event: "STARTED", Payload: map[string]string{"host_status": "NORMAL", "cluster_status": "ONLINE"}}}
	all = append(all, g)

	g = world("dead-by-bmc", "h1 loses power at 20 s: its agent stops, its BMC says off; Nova still says up (its\nheartbeat is 10 s old). Dead with proof (host-bmc-off) within a few seconds, no grace.", 3)
	g.span = 40 * s
	g.host("h1").agent = until(20 * s)
	g.host("h1").power = power(20 * s)
	all = append(all, g)

	g = world("isolated", "h1's compute is cut from Nova and h1's management path from Vigil at 20 s; its storage\npath still reaches Vigil. Nova says down from 80 s: isolated, never failed.", 3)
	g.span = 100 * s
	g.host("h1").compute = until(20 * s)
	g.host("h1").reach = func(p string, t time.Duration) bool { return p != model.PathManagement || t < 20*s }
	all = append(all, g)

	g = world("controller-partitioned", "Five hosts; at 20 s Vigil (and Nova's controller) lose h1..h4 on every path; they go on\nhearing each other; their BMCs cannot be read. Nova says them down from 80 s: they stay\ncontroller-partitioned, never failed, until heard again at 100 s.", 5)
	g.span = 110 * s
	cut := func(t time.Duration) bool { return t < 20*s || t >= 100*s }
	// h5, on Vigil's side of the cut, no longer hears them either.
	g.peerLink = func(a, b string, t time.Duration) bool { return cut(t) || (a == "h5") == (b == "h5") }
	for _, n := range []string{"h1", "h2", "h3", "h4"} {
		h := g.host(n)
		h.reach = func(_ string, t time.Duration) bool { return cut(t) }
		h.compute = cut
		h.power = func(t time.Duration) model.Power {
			if cut(t) {
				return model.PowerOn
			}
			return model.PowerUnknown
		}
	}
	all = append(all, g)

	g = world("crashed", "s1's qemu dies at 10 s: h1's agent reports its domain shutoff (crashed) at once; Nova still\nsays ACTIVE until its power sync at 30 s (SHUTOFF).", 2)
	g.span = 40 * s
	g.host("h1").domains = after(10*s, g.host("h1").domains, domainWith("s1", func(d *model.Domain) {
		d.State, d.Reason, d.Since, d.GuestAgent = model.DomainShutoff, model.ReasonCrashed, t0.Add(10*s), nil
	}))
	g.status = func(id string, t time.Duration) string {
		if id == "s1" && t >= 30*s {
			return model.StatusShutoff
		}
		return model.StatusActive
	}
	all = append(all, g)

	g = world("panicked", "s1's guest kernel panics at 10 s (pvpanic): its domain is crashed (panicked).", 2)
	g.span = 20 * s
	g.host("h1").domains = after(10*s, g.host("h1").domains, domainWith("s1", func(d *model.Domain) {
		d.State, d.Reason, d.Since, d.GuestAgent = model.DomainCrashed, model.ReasonPanicked, t0.Add(10*s), nil
	}))
	all = append(all, g)

	g = world("hung", "s1's guest freezes at 10 s: the domain runs, its guest agent fails one probe a second;\nthe third failure (threshold 3) makes it hung.", 2)
	g.span = 20 * s
	g.host("h1").domains = func(t time.Duration) []model.Domain {
		d := runningDomain("s1")
		if t >= 10*s {
			n := int((t-10*s)/s) + 1
			d.GuestAgent = &model.Probe{Name: "guest-agent", OK: false, Failures: n, Threshold: 3, Error: "guest-ping: timeout"}
		}
		return []model.Domain{d}
	}
	all = append(all, g)

	g = world("app-failed", "s1's application stops answering at 10 s: the guest agent answers, the http probe fails\n(threshold 2): app-failed.", 2)
	g.span = 20 * s
	g.host("h1").domains = func(t time.Duration) []model.Domain {
		d := runningDomain("s1")
		app := model.Probe{Name: "web", OK: true, Threshold: 2}
		if t >= 10*s {
			app = model.Probe{Name: "web", OK: false, Failures: int((t-10*s)/s) + 1, Threshold: 2, Error: "GET http://10.0.0.5/: connection refused"}
		}
		d.Apps = []model.Probe{app}
		return []model.Domain{d}
	}
	all = append(all, g)

	g = world("agent-suspect", "h1's agent stops at 10 s; h1 and its guests run, Nova says up: the agent is suspect, the\nhost up, its server healthy.", 2)
	g.span = 40 * s
	g.host("h1").agent = until(10 * s)
	all = append(all, g)

	// False-positive traps: each must end with no failed host and no failed server.
	g = world("trap-a-management-path-lost", "The controller loses h1's management path at 20 s (Nova, on the same network, says h1\ndown from 80 s); its storage path and its peers still hear it.", 3)
	g.span = 100 * s
	g.trap = true
	g.host("h1").compute = until(20 * s)
	g.host("h1").reach = func(p string, t time.Duration) bool { return p != model.PathManagement || t < 20*s }
	all = append(all, g)

	g = world("trap-b-segment-cut", "Vigil is cut from a whole segment (h1..h3 of 4) at 20 s, every path, Nova's controller\ntoo, BMCs unreadable; the segment's agents hear each other. Never failed, for 2 minutes.", 4)
	g.span = 150 * s
	g.trap = true
	for _, n := range []string{"h1", "h2", "h3"} {
		h := g.host(n)
		h.reach = func(_ string, t time.Duration) bool { return t < 20*s }
		h.compute = until(20 * s)
		h.power = func(t time.Duration) model.Power {
			if t < 20*s {
				return model.PowerOn
			}
			return model.PowerUnknown
		}
	}
	g.peerLink = func(a, b string, t time.Duration) bool {
		return t < 20*s || (a == "h4") == (b == "h4")
	}
	all = append(all, g)

	g = world("trap-c-jitter-and-loss", "Heartbeats delayed by up to 5 intervals with 30 % loss, for 10 minutes, on 3 hosts;\nNova up. A path may be suspect, never a host failed.", 3)
	g.span = 10 * time.Minute
	g.trap = true
	g.jitter, g.loss = 5*s, 0.3
	all = append(all, g)

	g = world("trap-d-compute-api-down", "The compute API answers 503 for 60 s (from 20 s); agents keep beating.", 3)
	g.span = 100 * s
	g.trap = true
	g.apiDown = func(t time.Duration) bool { return t >= 20*s && t < 80*s }
	all = append(all, g)

	g = world("trap-e-one-missed-beat", "h1 misses one heartbeat on both paths at 20 s.", 2)
	g.span = 30 * s
	g.trap = true
	g.host("h1").agent = func(t time.Duration) bool { return t != 20*s }
	all = append(all, g)

	g = world("trap-f-agent-dies", "h1's agent dies at 20 s while h1 and its guests run (Nova up, BMC on), for 2 minutes:\na dead agent is not a dead host.", 3)
	g.span = 140 * s
	g.trap = true
	g.host("h1").agent = until(20 * s)
	all = append(all, g)

	return all
}
