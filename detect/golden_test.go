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

// Golden scenarios (etcd's datadriven style, hand-rolled). Each file of
// detect/testdata/*.txt holds a scenario as text, a line "----", then the
// detector's changed verdicts with their evidence. The input is read into a small
// simulated world (agents beating on their paths, Nova polled every 5 s, BMCs read
// every second, monitors reporting, ticks every 250 ms); its observations are
// replayed into a detector and its output is compared with the section after
// "----". `go test ./detect -run Golden -update` rewrites only that section (review
// the diff). A malformed line fails the test with its file and line.
//
// The language, one statement a line, # starts a comment (leading comment lines
// say what the scenario is about), times are Go durations from the start:
//
//	world span=2m [grace=10s] [jitter=5s loss=0.3 seed=22]
//	    span: how long the world runs; grace: Config.HostDownGrace; jitter: beats
//	    arrive after a random delay up to it (else 20 ms); loss: the fraction of
//	    beats lost; seed: the draws of jitter and loss.
//	host h1[,h2...] [paths=management,storage] [interval=1s] [agent=none]
//	    hosts with an agent beating on each path every interval (defaults shown),
//	    hearing every other agent, their compute up in Nova, their BMC saying on.
//	server s1 on h1 [guest-agent=3|none] [apps=web:2,...]
//	    a protected server, ACTIVE in Nova on h1, its domain running on h1 with a
//	    guest agent probe (threshold 3) and the application probes named.
//	at 20s EVENT    an event changes the world from then on; events in time order:
//	    agent HOSTS stop|start           the host's agent stops (no beats, no peers)
//	    compute HOSTS stop|start         its nova-compute stops reporting to Nova
//	                                     (Nova says it down 60 s after its last report)
//	    bmc HOSTS on|off|unreadable      what its BMC answers (off also stops compute)
//	    cut HOSTS [PATH...]              its beats on these paths (all if none) stop
//	    mend HOSTS [PATH...]             reaching Vigil; mend: they reach it again
//	    split HOSTS HOSTS...             agents hear only agents on their side (hosts
//	                                     not named are one more side together)
//	    heal                             every agent hears every other again
//	    nova-api down|up                 the compute API answers 503 to polls
//	    status SERVER STATUS             Nova's status of the server (SHUTOFF...)
//	    domain SERVER STATE REASON       its domain, as the agent reports it, from then
//	    probe SERVER NAME fail "ERROR"   the probe fails once a second from then
//	    probe SERVER NAME ok             the probe answers again
//	    monitor TYPE EVENT host=H [server=S] [id=ID] [payload_key=value...]
//	                                     a masakari-monitors notification
//	expect no-failed
//	    a false-positive trap: it must end with no failed host and no failed server
//	    (asserted apart from the golden output; files named trap-* must say it).
//
// HOSTS is a comma-separated list (h1,h2,h3). An agent's beats carry the peers it
// heard within 10 intervals, and its report of its domains on every change and
// every third beat; a domain that does not run has no probe.

var update = flag.Bool("update", false, "rewrite the golden files of detect/testdata")

type timedObs struct {
	at  time.Duration
	obs model.Observation
	tag string
}

// observations generates the world's observations, in arrival order.
func (g *golden) observations() []timedObs {
	r := rand.New(rand.NewPCG(14, g.seed))
	var out []timedObs
	lastHeard := map[[2]string]time.Duration{} // (a, b) -> when a last heard b
	for _, h := range g.hosts {
		if h.noAgent {
			continue
		}
		seq := map[string]uint64{}
		var lastDomains string
		for t := time.Duration(0); t < g.span; t += h.iv {
			if !h.agent.at(t) {
				continue
			}
			peers := map[string]time.Duration{}
			for _, o := range g.hosts {
				if o == h || o.noAgent {
					continue
				}
				if o.agent.at(t) && g.hears(h.name, o.name, t) {
					lastHeard[[2]string{h.name, o.name}] = t
				}
				if at, heard := lastHeard[[2]string{h.name, o.name}]; heard && t-at < 10*h.iv {
					peers[o.name] = t - at
				}
			}
			// The agent repeats its report every third beat and on every change.
			var rep *model.HostReport
			doms := []model.Domain{}
			for _, s := range h.servers {
				doms = append(doms, s.domainAt(t))
			}
			if key := domainsKey(doms); key != lastDomains || int(t/h.iv)%3 == 0 {
				rep = &model.HostReport{Domains: doms}
				lastDomains = key
			}
			for _, p := range h.paths {
				seq[p]++
				if !h.reach[p].at(t) || g.loss > 0 && r.Float64() < g.loss {
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
		if g.apiDown.at(t) {
			out = append(out, timedObs{at: t, obs: model.Observation{At: t0.Add(t), Source: "poll", Err: "compute API: 503 Service Unavailable"}, tag: "poll: compute API error"})
			continue
		}
		obs := model.Observation{At: t0.Add(t), CloudAt: t0.Add(t), Source: "poll", Full: true}
		var desc []string
		for _, h := range g.hosts {
			if h.compute.at(t) && h.power.at(t) != model.PowerOff {
				lastUp[h.name] = t - t%(10*time.Second)
			}
			svc := model.ServiceUp
			if t-lastUp[h.name] > 60*time.Second {
				svc = model.ServiceDown
			}
			obs.Hosts = append(obs.Hosts, model.Host{Name: h.name, Service: svc, LastSeenUp: t0.Add(lastUp[h.name])})
			desc = append(desc, h.name+"="+string(svc))
		}
		servers := slices.SortedFunc(slices.Values(g.servers), func(a, b *simServer) int { return strings.Compare(a.id, b.id) })
		for _, s := range servers {
			st := s.status.at(t)
			obs.Servers = append(obs.Servers, model.Server{ID: s.id, Name: s.id, Host: s.host, Status: st, Intent: model.IntentOn, Updated: t0})
			if st != model.StatusActive {
				desc = append(desc, s.id+"="+st)
				// The shell reads the action log of a server down in place (NeedHistory):
				// nothing but its creation.
				if obs.Actions == nil {
					obs.Actions = map[string][]model.InstanceAction{}
				}
				obs.Actions[s.id] = []model.InstanceAction{{Action: "create", Start: t0.Add(-time.Hour)}}
			}
		}
		out = append(out, timedObs{at: t, obs: obs, tag: "poll: " + strings.Join(desc, " ")})
	}
	// BMCs read every second.
	for t := time.Duration(0); t < g.span; t += time.Second {
		power := map[string]model.Power{}
		for _, h := range g.hosts {
			if p := h.power.at(t); p != model.PowerUnknown {
				power[h.name] = p
			}
		}
		out = append(out, timedObs{at: t + 500*time.Millisecond, obs: model.Observation{At: t0.Add(t + 500*time.Millisecond), Source: "bmc", Power: power}})
	}
	for _, m := range g.monitors {
		var desc []string
		for _, r := range m.reports {
			desc = append(desc, fmt.Sprintf("%s %s %s%s", r.Type, r.Event, r.Host, r.Server))
		}
		out = append(out, timedObs{at: m.at, obs: model.Observation{At: t0.Add(m.at), Source: "masakari", Monitors: slices.Clone(m.reports)}, tag: "monitor: " + strings.Join(desc, ", ")})
	}
	// Ticks: silence is seen from the clock alone.
	for t := time.Duration(0); t < g.span; t += 250 * time.Millisecond {
		out = append(out, timedObs{at: t + 100*time.Millisecond, obs: model.Observation{At: t0.Add(t + 100*time.Millisecond), Source: "tick"}})
	}
	slices.SortStableFunc(out, func(a, b timedObs) int { return int(a.at - b.at) })
	return out
}

// domainsKey tells two reports apart by their content (probes are pointers).
func domainsKey(doms []model.Domain) string {
	var b strings.Builder
	for _, d := range doms {
		fmt.Fprintf(&b, "%v", d)
		if d.GuestAgent != nil {
			fmt.Fprintf(&b, " guest %v", *d.GuestAgent)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// run replays the world into a detector and renders its changed verdicts.
func (g *golden) run() (string, int, int) {
	d := New(g.cfg)
	var ids []string
	for _, s := range g.servers {
		ids = append(ids, s.id)
	}
	d.Protect(slices.Sorted(slices.Values(ids)))
	var b strings.Builder
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
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "+%s %s\n", fmtOffset(o.at), what)
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
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden scenario in testdata (%v)", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, hasOutput := splitScenario(string(text))
			if !hasOutput && !*update {
				t.Fatalf("%s has no line ---- ending its input (run with -update to write its output)", file)
			}
			g, err := parseScenario(file, input)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "trap-") && !g.noFailed {
				t.Fatalf("%s is a false-positive trap: it must say `expect no-failed`", file)
			}
			got, hosts, servers := g.run()
			if g.noFailed && (hosts != 0 || servers != 0) {
				t.Errorf("%s expects no failed verdict, but ends with %d failed hosts and %d failed servers", file, hosts, servers)
			}
			if *update {
				if err := os.WriteFile(file, []byte(input+"----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want != got {
				t.Errorf("%s differs from the detector's output (run `go test ./detect -run Golden -update` and review the diff):\n%s", file, diff(want, got, strings.Count(input, "\n")+1))
			}
		})
	}
}

// diff shows where want and got first part, numbered as lines of the file (the
// output section starts after first lines), with a few lines of each from there.
func diff(want, got string, first int) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from line %d:\n", first+i+1)
	for _, side := range []struct {
		mark  string
		lines []string
	}{{"- ", w}, {"+ ", g}} {
		for j := i; j < min(i+6, len(side.lines)); j++ {
			fmt.Fprintf(&b, "%s%s\n", side.mark, side.lines[j])
		}
	}
	return b.String()
}
