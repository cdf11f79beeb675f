package detect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// The scenario language of detect/testdata/*.txt (described at the top of
// golden_test.go): parseScenario turns a file's input section into a golden
// world, whose state is a set of timelines the generator of golden_test.go reads.

// timeline is a value that changes at given offsets from t0: its value at t is
// the one set last at or before t, else first.
type timeline[T any] struct {
	first   T
	changes []change[T]
}

type change[T any] struct {
	at time.Duration
	v  T
}

func (l *timeline[T]) set(at time.Duration, v T) { l.changes = append(l.changes, change[T]{at, v}) }

func (l *timeline[T]) at(t time.Duration) T {
	v := l.first
	for _, c := range l.changes {
		if c.at > t {
			break
		}
		v = c.v
	}
	return v
}

func on() timeline[bool] { return timeline[bool]{first: true} }

type golden struct {
	cfg    Config
	span   time.Duration
	jitter time.Duration
	loss   float64
	seed   uint64
	hosts  []*simHost
	// servers in the order declared; Nova places each on its host.
	servers []*simServer
	apiDown timeline[bool]
	// groups: which side of a split each agent is on (0: not named); nil: no split,
	// every agent hears every other.
	groups   timeline[map[string]int]
	monitors []monitorBatch
	// noFailed: the scenario is a false-positive trap; it must end with no failed
	// host and no failed server.
	noFailed bool
}

type monitorBatch struct {
	at      time.Duration
	reports []model.MonitorReport
}

// simHost is one host of a golden world.
type simHost struct {
	name    string
	paths   []string
	iv      time.Duration
	noAgent bool
	agent   timeline[bool]             // its agent runs (beats, probes, hears peers)
	reach   map[string]*timeline[bool] // a beat on that path reaches Vigil
	compute timeline[bool]             // its nova-compute reports to Nova
	power   timeline[model.Power]      // its BMC's answer (PowerUnknown: unreadable)
	servers []*simServer               // its domains, as its agent reports them
}

type simServer struct {
	id, host string
	status   timeline[string] // Nova's
	domain   timeline[domainState]
	guest    *simProbe // nil: no guest agent channel
	apps     []*simProbe
}

type domainState struct {
	state, reason string
	since         time.Duration
}

// simProbe is a probe tried once a second by the host's agent.
type simProbe struct {
	name      string
	threshold int
	fail      timeline[probeFailure]
}

type probeFailure struct {
	failing bool
	since   time.Duration
	err     string
}

func (p *simProbe) at(t time.Duration) model.Probe {
	f := p.fail.at(t)
	if !f.failing {
		return model.Probe{Name: p.name, OK: true, Threshold: p.threshold}
	}
	return model.Probe{Name: p.name, OK: false, Failures: int((t-f.since)/time.Second) + 1, Threshold: p.threshold, Error: f.err}
}

// domainAt is what the host's agent reports of the server's domain at t.
func (s *simServer) domainAt(t time.Duration) model.Domain {
	ds := s.domain.at(t)
	d := model.Domain{UUID: s.id, Name: s.id, State: ds.state, Reason: ds.reason, Since: t0.Add(ds.since)}
	if ds.state != model.DomainRunning {
		return d // a domain that does not run has no guest to probe
	}
	if s.guest != nil {
		p := s.guest.at(t)
		d.GuestAgent = &p
	}
	for _, a := range s.apps {
		d.Apps = append(d.Apps, a.at(t))
	}
	return d
}

func (g *golden) host(name string) *simHost {
	for _, h := range g.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

func (g *golden) server(id string) *simServer {
	for _, s := range g.servers {
		if s.id == id {
			return s
		}
	}
	return nil
}

// hears: agent a hears agent b at t (when both run).
func (g *golden) hears(a, b string, t time.Duration) bool {
	groups := g.groups.at(t)
	return groups == nil || groups[a] == groups[b]
}

// splitScenario cuts a file into its input and its output sections, at the first
// line "----". The output is "" when the file has none yet.
func splitScenario(text string) (input, output string, ok bool) {
	if strings.HasPrefix(text, "----\n") {
		return "", text[len("----\n"):], true
	}
	i := strings.Index(text, "\n----\n")
	if i < 0 {
		if strings.HasSuffix(text, "\n----") {
			return text[:len(text)-len("----")], "", true
		}
		return text, "", false
	}
	return text[:i+1], text[i+len("\n----\n"):], true
}

// parseScenario reads an input section; its errors name file and line.
func parseScenario(file, input string) (*golden, error) {
	p := &parser{g: &golden{cfg: Config{HostDownGrace: 10 * time.Second}}}
	for i, line := range strings.Split(input, "\n") {
		toks, err := fields(line)
		if err == nil && len(toks) > 0 {
			err = p.statement(toks)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, i+1, err)
		}
	}
	if p.g.span == 0 {
		return nil, fmt.Errorf("%s: no world line (world span=...)", file)
	}
	if len(p.g.hosts) == 0 {
		return nil, fmt.Errorf("%s: no host", file)
	}
	return p.g, nil
}

type parser struct {
	g      *golden
	events bool          // an "at" line was read: declarations are over
	last   time.Duration // the time of the last event
}

func (p *parser) statement(toks []string) error {
	g := p.g
	if toks[0] != "world" && g.span == 0 {
		return errors.New("the first line must be the world line (world span=...)")
	}
	if toks[0] != "at" && toks[0] != "expect" && p.events {
		return fmt.Errorf("%q after an event: declare the world, hosts and servers first", toks[0])
	}
	switch toks[0] {
	case "world":
		if g.span != 0 {
			return errors.New("a second world line")
		}
		return p.world(toks[1:])
	case "host":
		return p.hostLine(toks[1:])
	case "server":
		return p.serverLine(toks[1:])
	case "at":
		return p.event(toks[1:])
	case "expect":
		if len(toks) != 2 || toks[1] != "no-failed" {
			return fmt.Errorf("want: expect no-failed, got %q", strings.Join(toks, " "))
		}
		g.noFailed = true
		return nil
	}
	return fmt.Errorf("unknown statement %q (want world, host, server, at or expect)", toks[0])
}

func (p *parser) world(args []string) error {
	o, err := options(args, "span", "grace", "jitter", "loss", "seed")
	if err != nil {
		return err
	}
	g := p.g
	if o["span"] == "" {
		return errors.New("the world needs a span (world span=2m)")
	}
	if g.span, err = positive("span", o["span"]); err != nil {
		return err
	}
	if v, set := o["grace"]; set {
		if g.cfg.HostDownGrace, err = positive("grace", v); err != nil {
			return err
		}
	}
	if v, set := o["jitter"]; set {
		if g.jitter, err = positive("jitter", v); err != nil {
			return err
		}
	}
	if v, set := o["loss"]; set {
		if g.loss, err = strconv.ParseFloat(v, 64); err != nil || g.loss < 0 || g.loss >= 1 {
			return fmt.Errorf("loss=%s: want a fraction in [0, 1)", v)
		}
	}
	if v, set := o["seed"]; set {
		if g.seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("seed=%s: want a whole number", v)
		}
	}
	return nil
}

func (p *parser) hostLine(args []string) error {
	if len(args) == 0 {
		return errors.New("host needs a name (host h1 paths=management,storage)")
	}
	o, err := options(args[1:], "paths", "interval", "agent")
	if err != nil {
		return err
	}
	paths := []string{model.PathManagement, model.PathStorage}
	if v, set := o["paths"]; set {
		paths = strings.Split(v, ",")
		if slices.Contains(paths, "") {
			return fmt.Errorf("paths=%s: an empty path name", v)
		}
	}
	iv := time.Second
	if v, set := o["interval"]; set {
		if iv, err = positive("interval", v); err != nil {
			return err
		}
	}
	noAgent := false
	switch o["agent"] {
	case "":
	case "none":
		noAgent = true
	default:
		return fmt.Errorf("agent=%s: the only choice is agent=none (a host without an agent)", o["agent"])
	}
	for _, name := range strings.Split(args[0], ",") {
		if name == "" || p.g.host(name) != nil {
			return fmt.Errorf("host %q: empty or declared twice", name)
		}
		h := &simHost{name: name, paths: paths, iv: iv, noAgent: noAgent, agent: on(), compute: on(),
			power: timeline[model.Power]{first: model.PowerOn}, reach: map[string]*timeline[bool]{}}
		for _, path := range paths {
			l := on()
			h.reach[path] = &l
		}
		p.g.hosts = append(p.g.hosts, h)
	}
	return nil
}

func (p *parser) serverLine(args []string) error {
	if len(args) < 3 || args[1] != "on" {
		return errors.New("want: server ID on HOST [guest-agent=3|none] [apps=NAME:THRESHOLD,...]")
	}
	id, host := args[0], p.g.host(args[2])
	if host == nil {
		return fmt.Errorf("server %s on an undeclared host %q", id, args[2])
	}
	if p.g.server(id) != nil {
		return fmt.Errorf("server %s declared twice", id)
	}
	o, err := options(args[3:], "guest-agent", "apps")
	if err != nil {
		return err
	}
	s := &simServer{id: id, host: host.name, status: timeline[string]{first: model.StatusActive},
		domain: timeline[domainState]{first: domainState{state: model.DomainRunning, reason: model.ReasonBooted}}}
	switch v := o["guest-agent"]; v {
	case "none":
	case "":
		v = "3"
		fallthrough
	default:
		if s.guest, err = probe("guest-agent", v); err != nil {
			return err
		}
	}
	if v, set := o["apps"]; set {
		for _, a := range strings.Split(v, ",") {
			name, threshold, _ := strings.Cut(a, ":")
			pr, err := probe(name, threshold)
			if err != nil {
				return fmt.Errorf("apps=%s: %w", v, err)
			}
			s.apps = append(s.apps, pr)
		}
	}
	p.g.servers = append(p.g.servers, s)
	host.servers = append(host.servers, s)
	return nil
}

func probe(name, threshold string) (*simProbe, error) {
	n, err := strconv.Atoi(threshold)
	if name == "" || err != nil || n < 1 {
		return nil, fmt.Errorf("probe %q threshold %q: want a name and a threshold of 1 or more", name, threshold)
	}
	return &simProbe{name: name, threshold: n}, nil
}

// event reads "DURATION VERB ARGS...".
func (p *parser) event(args []string) error {
	if len(args) < 2 {
		return errors.New("want: at DURATION EVENT ...")
	}
	at, err := time.ParseDuration(args[0])
	if err != nil || at < 0 {
		return fmt.Errorf("at %s: want a duration from the start (30s, 1m40s)", args[0])
	}
	if at < p.last {
		return fmt.Errorf("at %s comes before the previous event (at %s): keep events in time order", args[0], p.last)
	}
	if at >= p.g.span {
		return fmt.Errorf("at %s: the world ends at %s", args[0], p.g.span)
	}
	p.events, p.last = true, at
	verb, args := args[1], args[2:]
	g := p.g
	switch verb {
	case "agent", "compute":
		hosts, v, err := p.hostsAnd(args, "stop", "start")
		for _, h := range hosts {
			if verb == "agent" {
				h.agent.set(at, v == "start")
			} else {
				h.compute.set(at, v == "start")
			}
		}
		return err
	case "bmc":
		hosts, v, err := p.hostsAnd(args, "on", "off", "unreadable")
		power := map[string]model.Power{"on": model.PowerOn, "off": model.PowerOff, "unreadable": model.PowerUnknown}[v]
		for _, h := range hosts {
			h.power.set(at, power)
		}
		return err
	case "cut", "mend":
		if len(args) == 0 {
			return fmt.Errorf("want: %s HOSTS [PATH...]", verb)
		}
		hosts, err := p.hosts(args[0])
		if err != nil {
			return err
		}
		for _, h := range hosts {
			paths := args[1:]
			if len(paths) == 0 {
				paths = h.paths
			}
			for _, path := range paths {
				l, ok := h.reach[path]
				if !ok {
					return fmt.Errorf("host %s has no path %q (it has %s)", h.name, path, strings.Join(h.paths, ", "))
				}
				l.set(at, verb == "mend")
			}
		}
		return nil
	case "split":
		if len(args) < 2 {
			return errors.New("want: split HOSTS HOSTS... (two sides or more)")
		}
		groups := map[string]int{}
		for i, side := range args {
			hosts, err := p.hosts(side)
			if err != nil {
				return err
			}
			for _, h := range hosts {
				if groups[h.name] != 0 {
					return fmt.Errorf("host %s on two sides of the split", h.name)
				}
				groups[h.name] = i + 1
			}
		}
		g.groups.set(at, groups)
		return nil
	case "heal":
		if len(args) != 0 {
			return errors.New("want: heal (no arguments)")
		}
		g.groups.set(at, nil)
		return nil
	case "nova-api":
		if len(args) != 1 || args[0] != "down" && args[0] != "up" {
			return errors.New("want: nova-api down|up")
		}
		g.apiDown.set(at, args[0] == "down")
		return nil
	case "status":
		if len(args) != 2 || strings.ToUpper(args[1]) != args[1] {
			return errors.New("want: status SERVER NOVA_STATUS (ACTIVE, SHUTOFF, ERROR...)")
		}
		s, err := p.serverNamed(args[0])
		if err != nil {
			return err
		}
		s.status.set(at, args[1])
		return nil
	case "domain":
		if len(args) != 3 || !slices.Contains(domainStates, args[1]) || !slices.Contains(domainReasons, args[2]) {
			return fmt.Errorf("want: domain SERVER STATE REASON, a state of %s and a reason of %s",
				strings.Join(domainStates, "|"), strings.Join(domainReasons, "|"))
		}
		s, err := p.serverNamed(args[0])
		if err != nil {
			return err
		}
		s.domain.set(at, domainState{state: args[1], reason: args[2], since: at})
		return nil
	case "probe":
		return p.probeEvent(at, args)
	case "monitor":
		return p.monitor(at, args)
	}
	return fmt.Errorf("unknown event %q (want agent, compute, bmc, cut, mend, split, heal, nova-api, status, domain, probe or monitor)", verb)
}

var (
	domainStates  = []string{model.DomainRunning, model.DomainPaused, model.DomainShutoff, model.DomainCrashed, model.DomainBlocked, model.DomainShutdown, model.DomainPMSusp}
	domainReasons = []string{model.ReasonCrashed, model.ReasonFailed, model.ReasonPanicked, model.ReasonWatchdog, model.ReasonIOError,
		model.ReasonShutdown, model.ReasonDestroyed, model.ReasonMigrated, model.ReasonUser, model.ReasonBooted}
)

// probeEvent reads "probe SERVER NAME fail ERROR" or "probe SERVER NAME ok".
func (p *parser) probeEvent(at time.Duration, args []string) error {
	usage := errors.New(`want: probe SERVER NAME fail "ERROR" or probe SERVER NAME ok`)
	if len(args) < 3 {
		return usage
	}
	s, err := p.serverNamed(args[0])
	if err != nil {
		return err
	}
	var pr *simProbe
	for _, c := range append([]*simProbe{s.guest}, s.apps...) {
		if c != nil && c.name == args[1] {
			pr = c
		}
	}
	if pr == nil {
		return fmt.Errorf("server %s has no probe %q (declare it: guest-agent=N or apps=%s:N)", s.id, args[1], args[1])
	}
	switch {
	case args[2] == "fail" && len(args) == 4:
		pr.fail.set(at, probeFailure{failing: true, since: at, err: args[3]})
	case args[2] == "ok" && len(args) == 3:
		pr.fail.set(at, probeFailure{})
	default:
		return usage
	}
	return nil
}

// monitor reads "monitor TYPE EVENT host=H [server=S] [id=ID] [PAYLOAD_KEY=VALUE...]".
func (p *parser) monitor(at time.Duration, args []string) error {
	if len(args) < 3 {
		return errors.New("want: monitor TYPE EVENT host=HOST [server=ID] [id=ID] [payload_key=value...]")
	}
	m := model.MonitorReport{Type: args[0], Event: args[1]}
	for _, kv := range args[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("monitor: %q is not key=value", kv)
		}
		switch k {
		case "host":
			m.Host = v
		case "server":
			m.Server = v
		case "id":
			m.ID = v
		default:
			if m.Payload == nil {
				m.Payload = map[string]string{}
			}
			m.Payload[k] = v
		}
	}
	if m.Host == "" {
		return errors.New("monitor: a report names its host (host=h1)")
	}
	g := p.g
	if n := len(g.monitors); n > 0 && g.monitors[n-1].at == at {
		g.monitors[n-1].reports = append(g.monitors[n-1].reports, m)
	} else {
		g.monitors = append(g.monitors, monitorBatch{at: at, reports: []model.MonitorReport{m}})
	}
	return nil
}

func (p *parser) hosts(list string) ([]*simHost, error) {
	var out []*simHost
	for _, name := range strings.Split(list, ",") {
		h := p.g.host(name)
		if h == nil {
			return nil, fmt.Errorf("undeclared host %q", name)
		}
		out = append(out, h)
	}
	return out, nil
}

// hostsAnd reads "HOSTS WORD" where WORD is one of words.
func (p *parser) hostsAnd(args []string, words ...string) ([]*simHost, string, error) {
	if len(args) != 2 || !slices.Contains(words, args[1]) {
		return nil, "", fmt.Errorf("want: HOSTS %s", strings.Join(words, "|"))
	}
	hosts, err := p.hosts(args[0])
	return hosts, args[1], err
}

func (p *parser) serverNamed(id string) (*simServer, error) {
	if s := p.g.server(id); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("undeclared server %q", id)
}

// options reads key=value arguments, each key of allowed at most once.
func options(args []string, allowed ...string) (map[string]string, error) {
	o := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value (keys: %s)", a, strings.Join(allowed, ", "))
		}
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(allowed, ", "))
		}
		if _, dup := o[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		o[k] = v
	}
	return o, nil
}

func positive(key, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%s: want a positive duration (1s, 2m)", key, v)
	}
	return d, nil
}

// fields splits a line into words: a word in double quotes may hold spaces (Go's
// escapes); a word starting with # starts a comment.
func fields(line string) ([]string, error) {
	var out []string
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			return out, nil
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) {
				return nil, errors.New("a quote is not closed")
			}
			w, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("quoted word %s: %w", line[i:j+1], err)
			}
			out = append(out, w)
			i = j + 1
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' {
				j++
			}
			out = append(out, line[i:j])
			i = j
		}
	}
	return out, nil
}

// A malformed scenario fails with its file and line, saying what is wrong.
func TestGoldenScenarioErrors(t *testing.T) {
	const decl = "world span=1m\nhost h1,h2\nserver s1 on h1\n"
	for _, tc := range []struct{ input, want string }{
		{"host h1\n", "x.txt:1: the first line must be the world line"},
		{"world span=0s\n", "x.txt:1: span=0s: want a positive duration"},
		{"world span=1m loss=1.5\n", "x.txt:1: loss=1.5: want a fraction"},
		{"world span=1m\nworld span=2m\n", "x.txt:2: a second world line"},
		{"world span=1m\n", "x.txt: no host"},
		{"world span=1m\nhost h1 colour=red\n", `x.txt:2: unknown key "colour"`},
		{"world span=1m\nhost h1\nhost h1\n", `x.txt:3: host "h1": empty or declared twice`},
		{"world span=1m\nhost h1\nserver s1 on h9\n", `x.txt:3: server s1 on an undeclared host "h9"`},
		{"world span=1m\nhost h1\nserver s1 on h1 apps=web\n", `x.txt:3: apps=web: probe "web" threshold ""`},
		{decl + "at 10s agent h1 pause\n", "x.txt:4: want: HOSTS stop|start"},
		{decl + "at 10s agent h3 stop\n", `x.txt:4: undeclared host "h3"`},
		{decl + "at 10s frobnicate h1\n", `x.txt:4: unknown event "frobnicate"`},
		{decl + "at ten agent h1 stop\n", "x.txt:4: at ten: want a duration"},
		{decl + "at 2m agent h1 stop\n", "x.txt:4: at 2m: the world ends at 1m0s"},
		{decl + "at 20s agent h1 stop\n\nat 10s agent h1 start\n", "x.txt:6: at 10s comes before the previous event"},
		{decl + "at 10s cut h1 tenant\n", `x.txt:4: host h1 has no path "tenant"`},
		{decl + "at 10s split h1\n", "x.txt:4: want: split HOSTS HOSTS..."},
		{decl + "at 10s split h1,h2 h2\n", "x.txt:4: host h2 on two sides of the split"},
		{decl + "at 10s domain s1 shutoff sleepy\n", "x.txt:4: want: domain SERVER STATE REASON"},
		{decl + "at 10s probe s1 web fail \"boom\"\n", `x.txt:4: server s1 has no probe "web"`},
		{decl + "at 10s probe s1 guest-agent fail \"boom\n", "x.txt:4: a quote is not closed"},
		{decl + "at 10s monitor COMPUTE_HOST STOPPED\n", "x.txt:4: want: monitor TYPE EVENT host=HOST"},
		{decl + "at 10s monitor COMPUTE_HOST STOPPED server=s1 x=y\n", "x.txt:4: monitor: a report names its host"},
		{decl + "at 10s agent h1 stop\nhost h3\n", `x.txt:5: "host" after an event`},
		{decl + "expect nothing\n", "x.txt:4: want: expect no-failed"},
		{decl + "wait 10s\n", `x.txt:4: unknown statement "wait"`},
	} {
		_, err := parseScenario("x.txt", tc.input)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parse of\n%s\nerror: %v\nwant it to start with: %s", tc.input, err, tc.want)
		}
	}
}

// The language reads what the files rely on: comments, quotes, host lists,
// defaults, timelines that change at their event's time.
func TestGoldenScenarioParse(t *testing.T) {
	g, err := parseScenario("x.txt", `# about
world span=1m jitter=2s loss=0.25 seed=7   # a comment
host h1,h2 interval=2s
host h3 paths=management agent=none
server s1 on h1 apps=web:2,db:4
server s2 on h2 guest-agent=none
at 10s agent h1 stop
at 10s cut h2 storage
at 12s probe s1 web fail "GET /: \"refused\" # not a comment"
at 20s split h1 h2,h3
at 30s heal
at 30s bmc h1,h3 unreadable
at 40s monitor COMPUTE_HOST STOPPED host=h1 id=n1 cluster_status=OFFLINE
at 40s monitor PROCESS STOPPED host=h2 process_name=nova-compute
expect no-failed
`)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2, h3 := g.host("h1"), g.host("h2"), g.host("h3")
	s1, s2 := g.server("s1"), g.server("s2")
	checks := []struct {
		what      string
		got, want any
	}{
		{"span, jitter, loss, seed", fmt.Sprint(g.span, g.jitter, g.loss, g.seed), "1m0s 2s 0.25 7"},
		{"grace default", g.cfg.HostDownGrace, 10 * time.Second},
		{"h2 interval", h2.iv, 2 * time.Second},
		{"h1 default paths", h1.paths, []string{"management", "storage"}},
		{"h3 without agent", h3.noAgent, true},
		{"h1 agent at 9.9s, 10s", [2]bool{h1.agent.at(9900 * time.Millisecond), h1.agent.at(10 * time.Second)}, [2]bool{true, false}},
		{"h2 paths at 10s", [2]bool{h2.reach["management"].at(10 * time.Second), h2.reach["storage"].at(10 * time.Second)}, [2]bool{true, false}},
		{"s1 web probe at 14s", s1.domainAt(14 * time.Second).Apps[0], model.Probe{Name: "web", Failures: 3, Threshold: 2, Error: `GET /: "refused" # not a comment`}},
		{"s1 db probe at 14s", s1.domainAt(14 * time.Second).Apps[1], model.Probe{Name: "db", OK: true, Threshold: 4}},
		{"s1 guest agent default threshold", s1.guest.threshold, 3},
		{"s2 without guest agent", s2.domainAt(0).GuestAgent == nil, true},
		{"h1 hears h2 at 19s, 20s, 30s", [3]bool{g.hears("h1", "h2", 19*time.Second), g.hears("h1", "h2", 20*time.Second), g.hears("h1", "h2", 30*time.Second)}, [3]bool{true, false, true}},
		{"h2 hears h3 at 20s", g.hears("h2", "h3", 20*time.Second), true},
		{"h3 power at 30s, h2's", [2]model.Power{h3.power.at(30 * time.Second), h2.power.at(30 * time.Second)}, [2]model.Power{model.PowerUnknown, model.PowerOn}},
		{"monitors at 40s, one batch", fmt.Sprint(len(g.monitors), len(g.monitors[0].reports), g.monitors[0].reports[1].Payload), "1 2 map[process_name:nova-compute]"},
		{"expect", g.noFailed, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// -update rewrites only the output: every file splits into an input and an output
// that join back into the same bytes.
func TestGoldenFilesSplit(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		input, output, ok := splitScenario(string(text))
		if !ok || input+"----\n"+output != string(text) || strings.Contains(output, "\n----\n") {
			t.Errorf("%s does not split into one input and one output at its line ----", file)
		}
	}
}
