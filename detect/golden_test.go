package detect

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Golden scenarios (etcd's datadriven style, hand-rolled): a small simulated world
// (agents beating on their paths, Nova polled, BMCs read, monitors reporting)
// produces timed observations; the detector's changed verdicts are written out
// with their evidence to detect/testdata/<name>.txt. A test fails on any diff;
// `go test ./detect -run Golden -update` rewrites the files (review the diff).

var update = flag.Bool("update", false, "rewrite the golden files of detect/testdata")

// simHost is one host of a golden world. Every func is of the world's time
// (offset from t0); nil means "always" (true, or power on).
type simHost struct {
	name  string
	paths []string
	iv    time.Duration
	// agent: its agent runs (it beats, probes, hears peers).
	agent func(t time.Duration) bool
	// reach: a beat on path reaches Vigil.
	reach func(path string, t time.Duration) bool
	// compute: its nova-compute reports to Nova.
	compute func(t time.Duration) bool
	// power: its BMC's answer (PowerUnknown: unreachable).
	power func(t time.Duration) model.Power
	// domains: what its agent reports of its domains.
	domains func(t time.Duration) []model.Domain
	events  func(t time.Duration) []model.DomainEvent
	noAgent bool
}

type golden struct {
	name, about string
	cfg         Config
	hosts       []*simHost
	servers     map[string]string // server -> host (Nova's placement)
	status      func(id string, t time.Duration) string
	apiDown     func(t time.Duration) bool
	// peerLink: agent a hears agent b (both running).
	peerLink func(a, b string, t time.Duration) bool
	monitors map[time.Duration][]model.MonitorReport
	jitter   time.Duration
	loss     float64
	span     time.Duration
	// trap: a false-positive trap: it must end with no failed host and no failed server.
	trap bool
}

func always(time.Duration) bool { return true }
func until(d time.Duration) func(time.Duration) bool {
	return func(t time.Duration) bool { return t < d }
}

func runningDomain(id string) model.Domain {
	return model.Domain{UUID: id, Name: id, State: model.DomainRunning, Reason: model.ReasonBooted, Since: t0,
		GuestAgent: &model.Probe{Name: "guest-agent", OK: true, Threshold: 3}}
}

// world builds n hosts h1..hn with one protected server each (s1 on h1...), two
// paths, a 1 s interval, every agent hearing every other.
func world(name, about string, n int) *golden {
	g := &golden{name: name, about: about, cfg: Config{HostDownGrace: 10 * time.Second}, servers: map[string]string{}, span: 2 * time.Minute,
		monitors: map[time.Duration][]model.MonitorReport{}}
	for i := 1; i <= n; i++ {
		h := &simHost{name: fmt.Sprintf("h%d", i), paths: []string{model.PathManagement, model.PathStorage}, iv: time.Second}
		id := fmt.Sprintf("s%d", i)
		g.servers[id] = h.name
		h.domains = func(time.Duration) []model.Domain { return []model.Domain{runningDomain(id)} }
		g.hosts = append(g.hosts, h)
	}
	return g
}

func (g *golden) host(name string) *simHost {
	for _, h := range g.hosts {
		if h.name == name {
			return h
		}
	}
	panic(name)
}

type timedObs struct {
	at  time.Duration
	obs model.Observation
	tag string
}

func ok(f func(time.Duration) bool, t time.Duration) bool { return f == nil || f(t) }

// observations generates the world's observations, in arrival order.
func (g *golden) observations() []timedObs {
	r := rand.New(rand.NewPCG(14, uint64(len(g.name))))
	var out []timedObs
	lastHeard := map[[2]string]time.Duration{} // (a, b) -> when a last heard b
	for _, h := range g.hosts {
		if h.noAgent {
			continue
		}
		seq := map[string]uint64{}
		var lastDomains string
		for t := time.Duration(0); t < g.span; t += h.iv {
			if !ok(h.agent, t) {
				continue
			}
			peers := map[string]time.Duration{}
			for _, o := range g.hosts {
				if o == h || o.noAgent {
					continue
				}
				if ok(o.agent, t) && (g.peerLink == nil || g.peerLink(h.name, o.name, t)) {
					lastHeard[[2]string{h.name, o.name}] = t
				}
				if at, heard := lastHeard[[2]string{h.name, o.name}]; heard && t-at < 10*h.iv {
					peers[o.name] = t - at
				}
			}
			var rep *model.HostReport
			if h.domains != nil {
				doms := h.domains(t)
				key := fmt.Sprint(doms)
				if key != lastDomains || int(t/h.iv)%3 == 0 {
					rep = &model.HostReport{Domains: doms}
					if h.events != nil {
						rep.Events = h.events(t)
					}
					lastDomains = key
				}
			}
			for _, p := range h.paths {
				seq[p]++
				if h.reach != nil && !h.reach(p, t) || g.loss > 0 && r.Float64() < g.loss {
					continue
				}
				delay := 20 * time.Millisecond
				if g.jitter > 0 {
					delay = time.Duration(r.Int64N(int64(g.jitter)))
				}
				b := model.AgentBeat{Host: h.name, Path: p, Boot: h.name + "-boot1", Seq: seq[p], Sent: t0.Add(t), At: t0.Add(t + delay),
					Interval: h.iv, Peers: peers, Report: rep}
				out = append(out, timedObs{at: t + delay, obs: model.Observation{At: b.At, Source: "agent", Agents: []model.AgentBeat{b}}})
			}
		}
	}
	// Nova polled every 5 s; a compute's heartbeat every 10 s; down after 60 s.
	lastUp := map[string]time.Duration{}
	for t := time.Duration(0); t < g.span; t += 5 * time.Second {
		if g.apiDown != nil && g.apiDown(t) {
			out = append(out, timedObs{at: t, obs: model.Observation{At: t0.Add(t), Source: "poll", Err: "compute API: 503 Service Unavailable"}, tag: "poll: compute API error"})
			continue
		}
		obs := model.Observation{At: t0.Add(t), CloudAt: t0.Add(t), Source: "poll", Full: true}
		var desc []string
		for _, h := range g.hosts {
			if ok(h.compute, t) && (h.power == nil || h.power(t) != model.PowerOff) {
				lastUp[h.name] = t - t%(10*time.Second)
			}
			svc := model.ServiceUp
			if t-lastUp[h.name] > 60*time.Second {
				svc = model.ServiceDown
			}
			obs.Hosts = append(obs.Hosts, model.Host{Name: h.name, Service: svc, LastSeenUp: t0.Add(lastUp[h.name])})
			desc = append(desc, h.name+"="+string(svc))
		}
		for _, id := range slices.Sorted(maps.Keys(g.servers)) {
			st := model.StatusActive
			if g.status != nil {
				st = g.status(id, t)
			}
			obs.Servers = append(obs.Servers, model.Server{ID: id, Name: id, Host: g.servers[id], Status: st, Intent: model.IntentOn, Updated: t0})
			if st != model.StatusActive {
				desc = append(desc, id+"="+st)
				// The shell reads the action log of a server down in place (NeedHistory):
				// nothing but its creation.
				if obs.Actions == nil {
					obs.Actions = map[string][]model.InstanceAction{}
				}
				obs.Actions[id] = []model.InstanceAction{{Action: "create", Start: t0.Add(-time.Hour)}}
			}
		}
		out = append(out, timedObs{at: t, obs: obs, tag: "poll: " + strings.Join(desc, " ")})
	}
	// BMCs read every second.
	for t := time.Duration(0); t < g.span; t += time.Second {
		power := map[string]model.Power{}
		for _, h := range g.hosts {
			if h.power != nil {
				if p := h.power(t); p != model.PowerUnknown {
					power[h.name] = p
				}
			} else {
				power[h.name] = model.PowerOn
			}
		}
		out = append(out, timedObs{at: t + 500*time.Millisecond, obs: model.Observation{At: t0.Add(t + 500*time.Millisecond), Source: "bmc", Power: power}})
	}
	for _, at := range slices.Sorted(maps.Keys(g.monitors)) {
		var desc []string
		for _, m := range g.monitors[at] {
			desc = append(desc, fmt.Sprintf("%s %s %s%s", m.Type, m.Event, m.Host, m.Server))
		}
		out = append(out, timedObs{at: at, obs: model.Observation{At: t0.Add(at), Source: "masakari", Monitors: g.monitors[at]}, tag: "monitor: " + strings.Join(desc, ", ")})
	}
	// Ticks: silence is seen from the clock alone.
	for t := time.Duration(0); t < g.span; t += 250 * time.Millisecond {
		out = append(out, timedObs{at: t + 100*time.Millisecond, obs: model.Observation{At: t0.Add(t + 100*time.Millisecond), Source: "tick"}})
	}
	slices.SortStableFunc(out, func(a, b timedObs) int { return int(a.at - b.at) })
	return out
}

// run replays the world into a detector and renders its changed verdicts.
func (g *golden) run() (string, int, int) {
	d := New(g.cfg)
	d.Protect(slices.Sorted(maps.Keys(g.servers)))
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", g.name)
	for _, line := range strings.Split(g.about, "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	for _, o := range g.observations() {
		for i := range o.obs.Monitors {
			o.obs.Monitors[i].At = o.obs.At
		}
		changed := d.Step(t0.Add(o.at), o.obs)
		if o.tag == "" && len(changed) == 0 {
			continue
		}
		if o.tag != "" && len(changed) == 0 && !strings.HasPrefix(o.tag, "monitor") && !strings.Contains(o.tag, "error") {
			continue // a poll that changed nothing
		}
		what := o.tag
		if what == "" {
			what = o.obs.Source
		}
		fmt.Fprintf(&b, "\n+%s %s\n", fmtOffset(o.at), what)
		for _, v := range changed {
			fault := ""
			if v.Fault != "" {
				fault = " fault=" + v.Fault
			}
			fmt.Fprintf(&b, "  %s %s failed=%v%s (%s)\n", v.Subject, cmpOr(v.Host, v.Server), v.Failed, fault, v.Rule)
			for _, e := range v.Evidence {
				fmt.Fprintf(&b, "      %s\n", e)
			}
		}
	}
	hosts, servers := 0, 0
	fmt.Fprintf(&b, "\nfinal:\n")
	vs := d.View().Verdicts
	keys := slices.SortedFunc(maps.Keys(vs), func(a, b model.Subject) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		v := vs[k]
		fmt.Fprintf(&b, "  %s %s failed=%v (%s)\n", k, cmpOr(v.Host, v.Server), v.Failed, v.Rule)
		if v.Failed && k.Kind == model.KindHost {
			hosts++
		}
		if v.Failed && k.Kind == model.KindServer {
			servers++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(d.View().Running)) {
		fmt.Fprintf(&b, "  running %s on %s\n", id, strings.Join(d.View().Running[id], ", "))
	}
	fmt.Fprintf(&b, "failed hosts: %d, failed servers: %d\n", hosts, servers)
	return b.String(), hosts, servers
}

func fmtOffset(d time.Duration) string { return fmt.Sprintf("%07.3fs", d.Seconds()) }

func TestGolden(t *testing.T) {
	for _, g := range goldenScenarios() {
		t.Run(g.name, func(t *testing.T) {
			got, hosts, servers := g.run()
			if g.trap && (hosts != 0 || servers != 0) {
				t.Errorf("trap %s ends with %d failed hosts and %d failed servers, want none", g.name, hosts, servers)
			}
			file := filepath.Join("testdata", g.name+".txt")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != got {
				t.Errorf("%s differs from the detector's output (run `go test ./detect -run Golden -update` and review the diff):\n%s", file, diff(string(want), got))
			}
		})
	}
}

// diff shows the first lines that differ.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}
