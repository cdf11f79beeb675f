package vigil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
	"github.com/vigil-ha/vigil/source/notifications"
)

// These tests run the whole of Vigil (engine, OpenStack driver, Nova's notifications,
// SQLite) against the OpenStack peer (test/peers/openstack/up.sh). Every test boots
// its own servers under a unique name prefix and deletes them. They kill and restart
// compute hosts, so none of them runs in parallel.

const (
	host1 = "fake-compute-1"
	host2 = "fake-compute-2"
)

// peer talks to Nova directly (admin and demo user), independently of Vigil's driver:
// it is how the tests cause faults, act as the oracle and check what Nova did.
type peer struct {
	t     *testing.T
	cloud string
	admin *gophercloud.ServiceClient
	demo  *gophercloud.ServiceClient
	image string
	amqp  string
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	name := os.Getenv("VIGIL_OPENSTACK_CLOUD")
	if name == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD unset: start the peer with test/peers/openstack/up.sh and source test/peers/openstack/env.sh")
	}
	p := &peer{t: t, cloud: name, amqp: os.Getenv("VIGIL_AMQP_URL")}
	if p.amqp == "" {
		t.Fatal("VIGIL_AMQP_URL unset: source test/peers/openstack/env.sh (these tests run Vigil with Nova's notifications)")
	}
	var provider *gophercloud.ProviderClient
	p.admin, provider = computeClient(t, name)
	p.demo, _ = computeClient(t, name+"-demo")
	img, err := gopenstack.NewImageV2(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatalf("image endpoint: %v", err)
	}
	var doc struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	if _, err := img.Get(context.Background(), img.ServiceURL("images")+"?name=tiny", &doc, nil); err != nil || len(doc.Images) == 0 {
		t.Fatalf("find image tiny (%v): run test/peers/openstack/up.sh", err)
	}
	p.image = doc.Images[0].ID
	return p
}

func computeClient(t *testing.T, cloudName string) (*gophercloud.ServiceClient, *gophercloud.ProviderClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(cloudName))
	if err != nil {
		t.Fatalf("clouds.yaml entry %s: %v", cloudName, err)
	}
	ao.AllowReauth = true
	provider, err := gopenstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		t.Fatalf("authenticate as %s: %v", cloudName, err)
	}
	provider.HTTPClient = http.Client{Timeout: 15 * time.Second}
	c, err := gopenstack.NewComputeV2(provider, eo)
	if err != nil {
		t.Fatalf("compute endpoint of %s: %v", cloudName, err)
	}
	c.Microversion = "2.53" // service UUIDs, evacuate without host, "networks": "none"
	return c, provider
}

// boot asks for n servers named prefix-1..n in one request (as the demo user when
// asDemo), pinned to host when not empty, and registers their deletion. Wait for
// them with waitBooted.
func (p *peer) boot(prefix string, n int, host string, asDemo bool) {
	p.t.Helper()
	srv := map[string]any{"name": prefix, "flavorRef": "1", "imageRef": p.image,
		"networks": "none", "min_count": n, "max_count": n}
	if host != "" {
		srv["availability_zone"] = "nova:" + host
	}
	c := p.admin
	if asDemo {
		c = p.demo
	}
	if _, err := c.Post(context.Background(), c.ServiceURL("servers"), map[string]any{"server": srv}, nil, nil); err != nil {
		p.t.Fatalf("boot %d servers %s: %v", n, prefix, err)
	}
	p.t.Cleanup(func() { p.deleteAll(prefix) })
}

// waitBooted waits until the n servers named prefix* are ACTIVE and returns their
// IDs, sorted by name.
func (p *peer) waitBooted(prefix string, n int) []string {
	p.t.Helper()
	var ids []string
	waitFor(p.t, 90*time.Second, fmt.Sprintf("%d servers %s ACTIVE", n, prefix), func() (bool, string) {
		ss := p.find(prefix)
		ids = ids[:0]
		active := 0
		for _, s := range ss {
			ids = append(ids, s.ID)
			if s.Status == model.StatusActive && s.TaskState == "" {
				active++
			}
			if s.Status == model.StatusError {
				p.t.Fatalf("server %s (%s) went to ERROR while booting on %q", s.Name, s.ID, s.Host)
			}
		}
		return len(ss) == n && active == n, fmt.Sprintf("%d found, %d active", len(ss), active)
	})
	return ids
}

type novaServer struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Host      string  `json:"OS-EXT-SRV-ATTR:host"`
	TaskState *string `json:"OS-EXT-STS:task_state"`
}

func (s novaServer) model() model.Server {
	m := model.Server{ID: s.ID, Name: s.Name, Status: s.Status, Host: s.Host}
	if s.TaskState != nil {
		m.TaskState = *s.TaskState
	}
	return m
}

// find lists the servers named prefix* of every project, sorted by name.
func (p *peer) find(prefix string) []model.Server {
	p.t.Helper()
	q := url.Values{"all_tenants": {"1"}, "name": {"^" + prefix}}
	var doc struct {
		Servers []novaServer `json:"servers"`
	}
	if _, err := p.admin.Get(context.Background(), p.admin.ServiceURL("servers", "detail")+"?"+q.Encode(), &doc, nil); err != nil {
		p.t.Fatalf("list servers %s: %v", prefix, err)
	}
	var out []model.Server
	for _, s := range doc.Servers {
		out = append(out, s.model())
	}
	slices.SortFunc(out, func(a, b model.Server) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (p *peer) server(id string) (model.Server, error) {
	var doc struct {
		Server novaServer `json:"server"`
	}
	if _, err := p.admin.Get(context.Background(), p.admin.ServiceURL("servers", id), &doc, nil); err != nil {
		return model.Server{}, err
	}
	return doc.Server.model(), nil
}

func (p *peer) mustServer(id string) model.Server {
	p.t.Helper()
	s, err := p.server(id)
	if err != nil {
		p.t.Fatalf("show server %s: %v", id, err)
	}
	return s
}

// deleteAll deletes every server named prefix* without waiting for each, then polls
// until none is left.
func (p *peer) deleteAll(prefix string) {
	ctx := context.Background()
	for _, s := range p.find(prefix) {
		if _, err := p.admin.Delete(ctx, p.admin.ServiceURL("servers", s.ID), nil); err != nil {
			p.t.Logf("delete %s: %v", s.ID, err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if len(p.find(prefix)) == 0 {
			return
		}
		pause()
	}
	p.t.Logf("servers %s still listed 90 s after their deletion", prefix)
}

// action posts a server action as the admin (or as the demo user).
func (p *peer) action(c *gophercloud.ServiceClient, id string, body map[string]any) error {
	_, err := c.Post(context.Background(), c.ServiceURL("servers", id, "action"), body, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}})
	return err
}

func (p *peer) resetToError(id string) {
	p.t.Helper()
	if err := p.action(p.admin, id, map[string]any{"os-resetState": map[string]string{"state": "error"}}); err != nil {
		p.t.Fatalf("os-resetState %s error: %v", id, err)
	}
}

type novaService struct {
	ID        string `json:"id"`
	Host      string `json:"host"`
	State     string `json:"state"`
	Forced    bool   `json:"forced_down"`
	UpdatedAt string `json:"updated_at"`
}

func (p *peer) service(host string) (novaService, error) {
	var doc struct {
		Services []novaService `json:"services"`
	}
	q := url.Values{"binary": {"nova-compute"}, "host": {host}}
	if _, err := p.admin.Get(context.Background(), p.admin.ServiceURL("os-services")+"?"+q.Encode(), &doc, nil); err != nil {
		return novaService{}, err
	}
	if len(doc.Services) != 1 {
		return novaService{}, fmt.Errorf("%d nova-compute services on %s", len(doc.Services), host)
	}
	return doc.Services[0], nil
}

// evacuations counts the evacuate actions Nova recorded for a server.
func evacuations(t *testing.T, drv *openstack.Driver, id string) int {
	t.Helper()
	acts, err := drv.Actions(context.Background(), id)
	if err != nil {
		t.Fatalf("instance actions of %s: %v", id, err)
	}
	n := 0
	for _, a := range acts {
		if a.Action == cloud.ActionEvacuate {
			n++
		}
	}
	return n
}

func actionNames(t *testing.T, drv *openstack.Driver, id string) []string {
	t.Helper()
	acts, err := drv.Actions(context.Background(), id)
	if err != nil {
		t.Fatalf("instance actions of %s: %v", id, err)
	}
	var out []string
	for _, a := range acts {
		out = append(out, a.Action)
	}
	return out
}

// peerScript runs test/peers/openstack/<script> args.
func peerScript(t *testing.T, script string, args ...string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "..", "test", "peers", "openstack", script), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
}

func prefix(t *testing.T) string {
	return fmt.Sprintf("vi-%s-%d", strings.ToLower(strings.TrimPrefix(t.Name(), "TestIntegration")), time.Now().UnixNano()%1e6)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, within, state)
		}
		pause()
	}
}

// pause is the wait between two checks of a condition.
func pause() { <-time.After(250 * time.Millisecond) }

// seen is a journaled event as OnEvent delivered it, with the number of server
// listings (polls) the driver had made by then.
type seen struct {
	model.Event
	polls int
}

// vigilRun is one Vigil process: the app, its driver and what it journaled and logged.
type vigilRun struct {
	t      *testing.T
	app    *App
	drv    *openstack.Driver
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []seen
	logs   []string
}

type runOpts struct {
	db       string // SQLite file; "" a fresh one
	interval time.Duration
	policies map[string]model.Policy
	hook     recover.Hook
	config   *Config      // the whole configuration (a policy file); default: DefaultConfig with policies
	fencer   cloud.Fencer // nil: no host can be fenced
	fabric   cloud.Fabric // nil: no fabric fence
	// startErr, when set, receives Start's error (Vigil refused to start) and
	// startVigil returns nil instead of failing the test.
	startErr *error
	// refreshEvery: how often the clusters' sources are resolved (0: the default).
	refreshEvery time.Duration
	// powerEvery: how often every BMC's power is read (0: the default).
	powerEvery time.Duration
}

// startVigil starts Vigil on the peer the way `vigil serve --amqp` does, and waits
// until it has listed the cloud and consumes Nova's notifications.
func startVigil(t *testing.T, p *peer, o runOpts) *vigilRun {
	t.Helper()
	if o.db == "" {
		o.db = filepath.Join(t.TempDir(), "vigil.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	drv, err := openstack.New(ctx, openstack.Config{CloudName: p.cloud, Timeout: 5 * time.Second})
	if err != nil {
		cancel()
		t.Fatalf("driver: %v", err)
	}
	r := &vigilRun{t: t, drv: drv, cancel: cancel, done: make(chan struct{})}
	log := slog.New(&recorder{r: r})
	cfg := DefaultConfig()
	if o.config != nil {
		cfg = *o.config
	}
	if cfg.ServiceDownTime == 0 {
		// As an operator configures Vigil: the cloud's own service_down_time (the
		// peer's is 20 s, see its README), by which a forced-down compute's silence
		// is judged.
		cfg.ServiceDownTime = peerServiceDownTime()
	}
	for name, pol := range o.policies {
		pol.Name = name
		cfg.Policies[name] = pol
	}
	pushed := make(chan model.Observation, 256)
	r.app, err = Start(ctx, Options{Listen: "127.0.0.1:0", DB: o.db, Interval: o.interval, FullEvery: 10 * time.Minute,
		Config: cfg, Compute: drv, Fencer: o.fencer, Fabric: o.fabric, Log: log, Pushed: pushed, Hook: o.hook, RefreshEvery: o.refreshEvery, PowerEvery: o.powerEvery,
		OnEvent: func(e model.Event) {
			polls := drv.Calls()["list-servers"]
			r.mu.Lock()
			r.events = append(r.events, seen{e, polls})
			r.mu.Unlock()
		}})
	if err != nil {
		cancel()
		if o.startErr != nil {
			*o.startErr = err
			return nil
		}
		t.Fatalf("start Vigil: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = Notifications(ctx, notifications.Config{URL: p.amqp, Logger: log}, pushed)
	}()
	go func() {
		defer wg.Done()
		if err := r.app.Run(ctx); err != nil {
			r.logf("Vigil stopped: %v", err)
		}
	}()
	go func() { wg.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	waitFor(t, 30*time.Second, "Vigil listed the cloud and consumes notifications", func() (bool, string) {
		return drv.Calls()["list-servers"] > 0 && r.logged("consuming Nova notifications"), fmt.Sprintf("calls %v", drv.Calls())
	})
	return r
}

// stop ends this Vigil (its reconcile loop, API, consumer) and waits for it.
func (r *vigilRun) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.t.Errorf("Vigil did not stop within 30 s")
	}
}

func (r *vigilRun) logf(format string, args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *vigilRun) logged(substr string) bool {
	return r.countLogs(substr) > 0
}

func (r *vigilRun) countLogs(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.logs {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// find returns the first event matching, if any.
func (r *vigilRun) find(match func(model.Event) bool) (seen, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if match(e.Event) {
			return e, true
		}
	}
	return seen{}, false
}

func (r *vigilRun) waitEvent(within time.Duration, what string, match func(model.Event) bool) seen {
	r.t.Helper()
	var e seen
	waitFor(r.t, within, what, func() (bool, string) {
		var ok bool
		e, ok = r.find(match)
		return ok, fmt.Sprintf("%d events; open incidents %d", r.count(), len(r.app.Engine.OpenIncidents()))
	})
	return e
}

func (r *vigilRun) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// timeline is every event journaled, for failure messages and logs.
func (r *vigilRun) timeline() string { return r.timelineSince(time.Time{}) }

// timelineSince shows each event's time as an offset from t0 (a fault), when given.
func (r *vigilRun) timelineSince(t0 time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		at := e.At.Format("15:04:05.000")
		if !t0.IsZero() {
			at = fmt.Sprintf("%+7.2fs", e.At.Sub(t0).Seconds())
		}
		fmt.Fprintf(&b, "  %s %-8s %-44s %s\n", at, e.Kind, e.Subject, e.Message)
	}
	return b.String()
}

func (r *vigilRun) protect(name, policy string, ids ...string) {
	r.t.Helper()
	c := model.Cluster{Name: name, Members: ids, Desired: len(ids), Policy: policy}
	var last error
	waitFor(r.t, 30*time.Second, "cluster "+name+" created", func() (bool, string) {
		last = r.app.Engine.CreateCluster(context.Background(), c)
		if last != nil && !strings.Contains(last.Error(), "unknown server") {
			r.t.Fatalf("create cluster %s: %v", name, last)
		}
		return last == nil, fmt.Sprint(last)
	})
}

// incident returns the newest stored incident about subject, with its steps.
func (r *vigilRun) incident(subject string) (model.Incident, bool) {
	r.t.Helper()
	ins, err := r.app.Store.Incidents(context.Background(), 100)
	if err != nil {
		r.t.Fatalf("stored incidents: %v", err)
	}
	for _, in := range ins {
		if in.Subject.String() == subject {
			return in, true
		}
	}
	return model.Incident{}, false
}

func describeSteps(steps []model.Step) string {
	var b strings.Builder
	for _, st := range steps {
		fmt.Fprintf(&b, "    %d %s server=%s host=%s hard=%v %s (rule: %s) %s\n", st.Seq, st.Action, st.Server, st.Host, st.Hard, st.State, st.Rule, st.Error)
	}
	return b.String()
}

// countMatching returns how many journaled events match.
func (r *vigilRun) countMatching(match func(model.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.events {
		if match(s.Event) {
			n++
		}
	}
	return n
}

func isEvent(kind, subject, contains string) func(model.Event) bool {
	return func(e model.Event) bool {
		return e.Kind == kind && e.Subject == subject && strings.Contains(e.Message, contains)
	}
}

// recorder is a slog handler that keeps the lines Vigil logs (the consumer's
// connection and its malformed-message reasons).
type recorder struct {
	r     *vigilRun
	attrs []slog.Attr
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	h.r.logf("%s %s", rec.Level, b.String())
	return nil
}
func (h *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{r: h.r, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *recorder) WithGroup(string) slog.Handler { return h }

// serverFault resets a protected server to ERROR and waits for Vigil to bring it
// back; it returns the fault → verdict and fault → resolved times.
func serverFault(t *testing.T, p *peer, v *vigilRun, id string) (toVerdict, toResolved time.Duration, verdict seen) {
	t.Helper()
	subject := "server/" + id
	start := time.Now()
	p.resetToError(id)
	verdict = v.waitEvent(15*time.Second, "failed verdict on "+id, func(e model.Event) bool {
		return e.Kind == "verdict" && e.Subject == subject && !e.At.Before(start.Add(-time.Second)) && strings.Contains(e.Message, "failed")
	})
	toVerdict = verdict.At.Sub(start)
	resolved := v.waitEvent(120*time.Second, "incident of "+id+" resolved", func(e model.Event) bool {
		return e.Kind == "incident" && e.Subject == subject && strings.Contains(e.Message, "resolved") && e.At.After(start)
	})
	toResolved = resolved.At.Sub(start)
	if s := p.mustServer(id); s.Status != model.StatusActive || s.ID != id {
		t.Fatalf("server %s after recovery: %s/%s\n%s", id, s.Status, s.TaskState, v.timeline())
	}
	return toVerdict, toResolved, verdict
}

// peerServiceDownTime is the peer's Nova service_down_time: 20 s unless up.sh ran
// with OS_SERVICE_DOWN_TIME.
func peerServiceDownTime() time.Duration {
	if v, err := strconv.Atoi(os.Getenv("OS_SERVICE_DOWN_TIME")); err == nil && v > 0 {
		return time.Duration(v) * time.Second
	}
	return 20 * time.Second
}

// TestIntegrationServerCrashRecovered: a server put into ERROR is seen from Nova's
// notification (before any poll could have seen it), hard-rebooted by the policy's
// ladder and ACTIVE again with its ID; a member that its owner (the demo user)
// stopped is left alone.
func TestIntegrationServerCrashRecovered(t *testing.T) {
	p := newPeer(t)
	pre := prefix(t)
	p.boot(pre+"-a", 2, "", false)
	p.boot(pre+"-demo", 1, "", true)
	ids := p.waitBooted(pre+"-a", 2)
	owned := p.waitBooted(pre+"-demo", 1)[0]

	// A poll every 30 s: what is seen sooner came from a notification.
	v := startVigil(t, p, runOpts{interval: 30 * time.Second})
	v.protect("web", "default", append(ids, owned)...)

	// The owner stops their server.
	stopped := time.Now()
	if err := p.action(p.demo, owned, map[string]any{"os-stop": nil}); err != nil {
		t.Fatalf("stop %s as its owner (demo): %v", owned, err)
	}

	// A crash: ERROR.
	id := ids[0]
	polls := v.drv.Calls()["list-servers"]
	start := time.Now()
	p.resetToError(id)
	verdict := v.waitEvent(15*time.Second, "failed verdict on "+id, func(e model.Event) bool {
		return e.Kind == "verdict" && e.Subject == "server/"+id && strings.Contains(e.Message, "failed")
	})
	toVerdict := verdict.At.Sub(start)
	if verdict.polls != polls {
		t.Fatalf("the verdict came after a poll (%d listings before the fault, %d at the verdict): not from the notification\n%s",
			polls, verdict.polls, v.timeline())
	}
	resolved := v.waitEvent(120*time.Second, "incident of "+id+" resolved", isEvent("incident", "server/"+id, "resolved"))
	toResolved := resolved.At.Sub(start)
	s := p.mustServer(id)
	if s.Status != model.StatusActive || s.TaskState != "" || s.ID != id {
		t.Fatalf("server %s after recovery: %s/%s\n%s", id, s.Status, s.TaskState, v.timeline())
	}
	in, ok := v.incident("server/" + id)
	if !ok || in.State != model.IncidentResolved || len(in.Steps) == 0 {
		t.Fatalf("stored incident of %s: %+v\n%s", id, in, v.timeline())
	}
	first := in.Steps[0]
	if first.Action != model.ActReboot || !first.Hard || first.State != model.StepSucceeded {
		t.Fatalf("first step %+v, want a hard reboot (ladder rung reboot on ERROR) that succeeded\n%s", first, describeSteps(in.Steps))
	}
	if n := v.drv.Calls()["list-servers"]; n != polls {
		t.Logf("note: %d poll(s) happened before the incident was resolved", n-polls)
	}
	t.Logf("os-resetState error -> verdict %v (from the notification: %d listings before and at the verdict); -> incident resolved %v; steps:\n%s",
		toVerdict.Round(time.Millisecond), polls, toResolved.Round(time.Millisecond), describeSteps(in.Steps))

	// The owner's stop: no incident, no verdict, no reboot, across at least one poll
	// that saw it SHUTOFF, and at least 30 s.
	var sawOff time.Time
	var pollsAtOff int
	waitFor(t, 75*time.Second, "30 s and a poll after the owner's stop", func() (bool, string) {
		if in, ok := v.incident("server/" + owned); ok {
			t.Fatalf("incident opened for %s that its owner stopped: %+v\n%s", owned, in, v.timeline())
		}
		if e, ok := v.find(func(e model.Event) bool { return e.Subject == "server/"+owned && e.Kind != "" }); ok {
			t.Fatalf("event about %s that its owner stopped: %+v\n%s", owned, e, v.timeline())
		}
		if sawOff.IsZero() && p.mustServer(owned).Status == model.StatusShutoff {
			sawOff, pollsAtOff = time.Now(), v.drv.Calls()["list-servers"]
		}
		return !sawOff.IsZero() && v.drv.Calls()["list-servers"] > pollsAtOff && time.Since(stopped) >= 30*time.Second,
			fmt.Sprintf("SHUTOFF since %v, polls %d", sawOff.Format(time.TimeOnly), v.drv.Calls()["list-servers"])
	})
	if acts := actionNames(t, v.drv, owned); slices.Contains(acts, cloud.ActionReboot) || slices.Contains(acts, cloud.ActionStart) {
		t.Fatalf("server %s stopped by its owner got actions %v", owned, acts)
	}
	if s := p.mustServer(owned); s.Status != model.StatusShutoff {
		t.Fatalf("server %s stopped by its owner is %s", owned, s.Status)
	}
	t.Logf("owner's stop of %s: no incident, no verdict, no reboot for %v (%d polls)", owned,
		time.Since(stopped).Round(time.Second), v.drv.Calls()["list-servers"])
}

// killComputes SIGKILLs the given fake computes at the same instant and returns it.
func killComputes(t *testing.T, ns ...int) time.Time {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, file, _, _ := runtime.Caller(0)
			out, err := exec.Command(filepath.Join(filepath.Dir(file), "..", "test", "peers", "openstack", "ctl.sh"),
				"kill-compute", fmt.Sprint(n)).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("kill-compute %d: %v: %s", n, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// allActiveElsewhere polls until every server is ACTIVE (no task) on a host other
// than from, and returns when that was first seen.
func allActiveElsewhere(t *testing.T, p *peer, ids []string, from string, within time.Duration) time.Time {
	t.Helper()
	waitFor(t, within, fmt.Sprintf("%d servers ACTIVE off %s", len(ids), from), func() (bool, string) {
		var states []string
		ok := true
		for _, id := range ids {
			s, err := p.server(id)
			if err != nil {
				return false, err.Error()
			}
			states = append(states, s.Status+"@"+s.Host)
			if s.Status != model.StatusActive || s.TaskState != "" || s.Host == from || s.Host == "" {
				ok = false
			}
		}
		return ok, strings.Join(states, " ")
	})
	return time.Now()
}

// oracle does by hand at the fault instant what an operator who knew would do: force
// the dead host's service down (retried until Nova accepts) and evacuate its servers.
func oracle(p *peer, host string, ids []string, fault time.Time) (time.Duration, error) {
	svc, err := p.service(host)
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	for {
		_, err := p.admin.Put(ctx, p.admin.ServiceURL("os-services", svc.ID), map[string]any{"forced_down": true}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{200}})
		if err == nil {
			break
		}
		if time.Since(fault) > 30*time.Second {
			return 0, fmt.Errorf("force down %s: %w", host, err)
		}
		pause()
	}
	for _, id := range ids {
		if err := p.action(p.admin, id, map[string]any{"evacuate": map[string]any{}}); err != nil {
			return 0, fmt.Errorf("evacuate %s: %w", id, err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		done := 0
		for _, id := range ids {
			if s, err := p.server(id); err == nil && s.Status == model.StatusActive && s.TaskState == "" && s.Host != host && s.Host != "" {
				done++
			}
		}
		if done == len(ids) {
			return time.Since(fault), nil
		}
		pause()
	}
	return 0, fmt.Errorf("oracle's evacuations of %v not ACTIVE within 90 s", ids)
}

// serviceFenceOnly is the policy for hosts without a BMC whose owner accepts a
// forced-down compute service as the fence.
func serviceFenceOnly() model.Policy {
	pol := model.DefaultPolicy()
	pol.ServiceFenceOnly = true
	pol.HostDownGrace = 2 * time.Second
	return pol
}

// TestIntegrationHostFailureVsOracle: two computes die at the same instant. Vigil
// recovers fake-compute-1 (policy service_fence_only) on its own: it sees Nova report
// the host down, forces its service down and evacuates its 3 protected servers. The
// oracle evacuates fake-compute-2's 3 servers by hand at the fault instant. A fourth
// server on fake-compute-2 is protected by the default policy (no BMC, no
// service_fence_only): Vigil escalates its host's incident and never evacuates it.
func TestIntegrationHostFailureVsOracle(t *testing.T) {
	p := newPeer(t)
	t.Cleanup(func() { peerScript(t, "up.sh") }) // after the servers' deletion: restarts the computes, forces them up
	pre := prefix(t)
	p.boot(pre+"-v", 3, host1, false)
	p.boot(pre+"-o", 3, host2, false)
	p.boot(pre+"-s", 1, host2, false)
	mine := p.waitBooted(pre+"-v", 3)
	theirs := p.waitBooted(pre+"-o", 3)
	strict := p.waitBooted(pre+"-s", 1)[0]
	for _, id := range append(append(slices.Clone(mine), theirs...), strict) {
		if s := p.mustServer(id); s.Host != host1 && s.Host != host2 {
			t.Fatalf("server %s booted on %s", id, s.Host)
		}
	}

	v := startVigil(t, p, runOpts{interval: time.Second, policies: map[string]model.Policy{"sfo": serviceFenceOnly()}})
	v.protect("web", "sfo", mine...)
	v.protect("strict", "default", strict)

	fault := killComputes(t, 1, 2)
	type result struct {
		d   time.Duration
		err error
	}
	oracleDone := make(chan result, 1)
	go func() {
		d, err := oracle(p, host2, theirs, fault)
		oracleDone <- result{d, err}
	}()
	// Nova's own detection of the dead host (no one forces fake-compute-1 down before Vigil).
	novaDown := make(chan time.Duration, 1)
	go func() {
		for time.Since(fault) < 60*time.Second {
			if svc, err := p.service(host1); err == nil && svc.State == "down" {
				novaDown <- time.Since(fault)
				return
			}
			pause()
		}
		novaDown <- -1
	}()

	vigilAt := allActiveElsewhere(t, p, mine, host1, 120*time.Second)
	vigilTook := vigilAt.Sub(fault)
	or := <-oracleDone
	if or.err != nil {
		t.Fatalf("oracle: %v", or.err)
	}
	novaTook := <-novaDown
	resolved := v.waitEvent(30*time.Second, host1+" incident resolved", isEvent("incident", "host/"+host1, "resolved"))
	t.Logf("kill -> all 3 ACTIVE elsewhere: Vigil %.1f s, oracle %.1f s, Nova's own down detection %.1f s (Vigil's incident resolved at %.1f s)",
		vigilTook.Seconds(), or.d.Seconds(), novaTook.Seconds(), resolved.At.Sub(fault).Seconds())

	in, ok := v.incident("host/" + host1)
	if !ok || in.State != model.IncidentResolved {
		t.Fatalf("incident of %s: %+v\n%s", host1, in, v.timeline())
	}
	// One incident answers the failure: it is never stood down and reopened (as when
	// Vigil once took its own force-down's updated_at bump for a heartbeat).
	if n := v.countMatching(isEvent("incident", "host/"+host1, " opened ")); n != 1 {
		t.Fatalf("%d incidents opened for %s, want 1\n%s", n, host1, v.timeline())
	}
	t.Logf("incident %d steps:\n%s\nVigil's timeline from the kill:\n%s", in.ID, describeSteps(in.Steps), v.timelineSince(fault))
	var fence, markDown int
	evacuated := map[string]int{}
	for _, st := range in.Steps {
		switch st.Action {
		case model.ActFence:
			fence++
			if st.State != model.StepSkipped || !strings.Contains(st.Rule, "service_fence_only") {
				t.Errorf("fence step %s (rule %q), want skipped by a rule naming service_fence_only", st.State, st.Rule)
			}
		case model.ActMarkDown:
			markDown++
			if st.State != model.StepSucceeded {
				t.Errorf("mark-down %s: %s", st.State, st.Error)
			}
		case model.ActEvacuate:
			if st.State == model.StepSucceeded {
				evacuated[st.Server]++
			}
		default:
			t.Errorf("unexpected step %s %s %s", st.Action, st.Server, st.State)
		}
	}
	if fence != 1 || markDown != 1 || len(evacuated) != 3 {
		t.Fatalf("steps: %d fence, %d mark-down, %d servers evacuated; want 1, 1, 3\n%s", fence, markDown, len(evacuated), describeSteps(in.Steps))
	}
	for _, id := range mine {
		if evacuated[id] != 1 {
			t.Errorf("server %s: %d succeeded evacuate steps, want 1", id, evacuated[id])
		}
		if n := evacuations(t, v.drv, id); n != 1 {
			t.Errorf("server %s: Nova recorded %d evacuate actions, want exactly 1", id, n)
		}
	}

	// The default policy: no BMC, no service_fence_only: escalated, never evacuated.
	esc := v.waitEvent(30*time.Second, host2+" incident escalated", isEvent("incident", "host/"+host2, "escalated"))
	if !strings.Contains(esc.Message, "no fence proof") {
		t.Fatalf("escalation of %s: %q, want it to say no fence proof", host2, esc.Message)
	}
	if e, ok := v.find(func(e model.Event) bool {
		return e.Kind == "step" && (e.Subject == "server/"+strict || strings.Contains(e.Message, strict))
	}); ok {
		t.Fatalf("Vigil took a step on %s (default policy): %s\n%s", strict, e.Message, v.timeline())
	}
	if n := evacuations(t, v.drv, strict); n != 0 {
		t.Fatalf("server %s (default policy, host without BMC): %d evacuate actions, want none", strict, n)
	}
	t.Logf("default policy on %s: %s", host2, esc.Message)
}

// TestIntegrationRestartMidEvacuation: Vigil #1 dies right after Nova accepted its
// first evacuation, before journaling the outcome; Vigil #2 on the same SQLite file
// asks Nova, does not repeat it, and evacuates the rest.
func TestIntegrationRestartMidEvacuation(t *testing.T) {
	p := newPeer(t)
	t.Cleanup(func() { peerScript(t, "up.sh") })
	pre := prefix(t)
	p.boot(pre, 3, host1, false)
	ids := p.waitBooted(pre, 3)
	db := filepath.Join(t.TempDir(), "vigil.db")
	pols := map[string]model.Policy{"sfo": serviceFenceOnly()}

	var mu sync.Mutex
	var crashedOn string
	crash := func(st model.Step) error {
		mu.Lock()
		defer mu.Unlock()
		if crashedOn == "" && st.Action == model.ActEvacuate {
			crashedOn = st.Server
			return recover.ErrCrash
		}
		if crashedOn != "" {
			return recover.ErrCrash // dead: nothing after the crash reaches the cloud
		}
		return nil
	}
	v1 := startVigil(t, p, runOpts{db: db, interval: time.Second, policies: pols,
		hook: recover.Hook{AfterAction: crash, AfterIntent: func(st model.Step) error {
			mu.Lock()
			defer mu.Unlock()
			if crashedOn != "" {
				return recover.ErrCrash
			}
			return nil
		}}})
	v1.protect("web", "sfo", ids...)
	fault := killComputes(t, 1)
	waitFor(t, 90*time.Second, "Vigil #1 crashes after its first evacuate", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return crashedOn != "", fmt.Sprintf("%d events", v1.count())
	})
	v1.stop()
	t.Logf("Vigil #1 crashed %.1f s after the kill, right after Nova accepted the evacuation of %s:\n%s",
		time.Since(fault).Seconds(), crashedOn, v1.timelineSince(fault))

	v2 := startVigil(t, p, runOpts{db: db, interval: time.Second, policies: pols})
	allActiveElsewhere(t, p, ids, host1, 120*time.Second)
	v2.waitEvent(30*time.Second, host1+" incident resolved", isEvent("incident", "host/"+host1, "resolved"))
	t.Logf("Vigil #2, kill -> all ACTIVE elsewhere %.1f s:\n%s", time.Since(fault).Seconds(), v2.timelineSince(fault))
	if _, ok := v2.find(isEvent("step", "server/"+crashedOn, "settled: evacuate "+crashedOn+" from "+host1+" was taken (the server's action log")); !ok {
		t.Fatalf("Vigil #2 did not settle the evacuation of %s from Nova's instance actions\n%s", crashedOn, v2.timeline())
	}
	for _, id := range ids {
		if n := evacuations(t, v2.drv, id); n != 1 {
			t.Errorf("server %s: Nova recorded %d evacuate actions, want exactly 1", id, n)
		}
	}
	in, _ := v2.incident("host/" + host1)
	t.Logf("incident %d (%s), steps:\n%s", in.ID, in.State, describeSteps(in.Steps))
}

// TestIntegrationComputeAPIDown: while nova-api is stopped Vigil says the cloud is
// unreachable and concludes nothing; once it is back, a new fault is recovered.
func TestIntegrationComputeAPIDown(t *testing.T) {
	p := newPeer(t)
	pre := prefix(t)
	p.boot(pre, 2, "", false)
	t.Cleanup(func() { peerScript(t, "up.sh") }) // nova-api back before the servers' deletion
	ids := p.waitBooted(pre, 2)
	s0 := p.find(pre)[0]
	v := startVigil(t, p, runOpts{interval: time.Second})
	v.protect("web", "default", ids...)

	before := v.count()
	peerScript(t, "ctl.sh", "stop", "nova-api")
	down := time.Now()
	waitFor(t, 20*time.Second, "Vigil reports the cloud unreachable", func() (bool, string) {
		return !v.app.Engine.Cloud().Reachable, fmt.Sprintf("%+v", v.app.Engine.Cloud())
	})
	t.Logf("cloud unreachable reported %.1f s after nova-api stopped: %s", time.Since(down).Seconds(), v.app.Engine.Cloud().Error)

	// Computes keep notifying while nova-api is down: a notification (here the true
	// state of a member, as its compute would send it) is not a sign that the compute
	// API answers again.
	st := v.app.Engine.Cloud().Stats
	publish(t, p.amqp, novaNotification("instance.update", s0.Host, map[string]any{
		"nova_object.name": "InstanceUpdatePayload", "nova_object.namespace": "nova", "nova_object.version": "2.0",
		"nova_object.data": map[string]any{"uuid": s0.ID, "display_name": s0.Name, "host": s0.Host, "state": "active",
			"task_state": nil, "image_uuid": p.image}}))
	waitFor(t, 10*time.Second, "the notification reconciled", func() (bool, string) {
		now := v.app.Engine.Cloud().Stats
		return now.Ticks-now.PollErrors > st.Ticks-st.PollErrors, fmt.Sprintf("%+v", now)
	})
	if c := v.app.Engine.Cloud(); c.Reachable {
		t.Fatalf("a notification during the outage made the cloud reachable: %+v\n%s", c, v.timeline())
	}
	waitFor(t, 40*time.Second, "20 s of outage", func() (bool, string) {
		if v.app.Engine.Cloud().Reachable {
			t.Fatalf("cloud reachable during the outage: %+v", v.app.Engine.Cloud())
		}
		if n := len(v.app.Engine.OpenIncidents()); n != 0 {
			t.Fatalf("%d incidents opened during the outage\n%s", n, v.timeline())
		}
		return time.Since(down) >= 20*time.Second, ""
	})
	errs := v.app.Engine.Cloud().Stats.PollErrors
	peerScript(t, "up.sh")
	waitFor(t, 30*time.Second, "cloud reachable again", func() (bool, string) {
		return v.app.Engine.Cloud().Reachable, v.app.Engine.Cloud().Error
	})
	t.Logf("cloud reachable again %.1f s after the stop (%d failed polls)", time.Since(down).Seconds(), errs)
	v.mu.Lock()
	during := slices.Clone(v.events[before:])
	v.mu.Unlock()
	for _, e := range during {
		if e.Kind != "cloud" {
			t.Fatalf("event during and after the outage: %s %s %s\n%s", e.Kind, e.Subject, e.Message, v.timeline())
		}
	}
	for _, id := range ids {
		if acts := actionNames(t, v.drv, id); !slices.Equal(acts, []string{cloud.ActionCreate}) {
			t.Fatalf("server %s: actions %v after the outage, want only create", id, acts)
		}
	}
	toVerdict, toResolved, _ := serverFault(t, p, v, ids[1])
	t.Logf("after the outage: os-resetState error -> verdict %v, -> resolved %v\n%s",
		toVerdict.Round(time.Millisecond), toResolved.Round(time.Millisecond), v.timeline())
}

// TestIntegrationMalformedNotification: garbage on Nova's notification exchange is
// logged with its reason and skipped; a real fault is still detected and recovered.
func TestIntegrationMalformedNotification(t *testing.T) {
	p := newPeer(t)
	pre := prefix(t)
	p.boot(pre, 1, "", false)
	id := p.waitBooted(pre, 1)[0]
	v := startVigil(t, p, runOpts{interval: 30 * time.Second})
	v.protect("web", "default", id)

	publish(t, p.amqp,
		[]byte("{not json"),
		[]byte(`{"event_type": "instance.update", "payload": {}}`), // no oslo envelope
		novaNotification("instance.update", host1, map[string]any{"nova_object.name": "NoSuchPayload", "nova_object.data": "not an object"}),
	)
	waitFor(t, 10*time.Second, "3 malformed notifications logged", func() (bool, string) {
		return v.countLogs("skipped a") >= 3, fmt.Sprint(v.countLogs("skipped a"))
	})
	v.mu.Lock()
	for _, l := range v.logs {
		if strings.Contains(l, "skipped a") {
			t.Log(l)
		}
	}
	v.mu.Unlock()
	toVerdict, toResolved, verdict := serverFault(t, p, v, id)
	t.Logf("after the malformed messages: os-resetState error -> verdict %v (%s), -> resolved %v",
		toVerdict.Round(time.Millisecond), verdict.Message, toResolved.Round(time.Millisecond))
}

// novaNotification wraps a payload the way oslo.messaging does on Nova's exchange.
func novaNotification(eventType, host string, payload map[string]any) []byte {
	inner, _ := json.Marshal(map[string]any{"event_type": eventType, "priority": "INFO",
		"publisher_id": "nova-compute:" + host, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05.000000"),
		"message_id": fmt.Sprintf("vigil-test-%d", time.Now().UnixNano()), "payload": payload})
	body, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(inner)})
	return body
}

// publish sends messages to Nova's notification exchange (topic "nova", routing key
// versioned_notifications.info), as a compute would.
func publish(t *testing.T, url string, bodies ...[]byte) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("amqp: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("amqp channel: %v", err)
	}
	for _, b := range bodies {
		if err := ch.PublishWithContext(context.Background(), "nova", "versioned_notifications.info", false, false,
			amqp.Publishing{ContentType: "application/json", Body: b}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}
