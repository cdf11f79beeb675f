package vigil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/fence/fabric"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/source/notifications"
)

// `vigil bench nova`: rounds of "boot N servers on one compute, cut its power, time
// until all are ACTIVE on another host", for three contenders, one at a time:
//
//   - vigil: Vigil as `vigil serve` runs it (in this process: the same App, so that
//     its journal is read directly, with the times it recorded), with the policy
//     file's configuration (the built-in default policy unless the file says
//     otherwise) and its BMCs;
//   - oracle: the bench itself, at the fault instant, forces the compute service
//     down and evacuates every server: what an operator who knew at once would do,
//     the floor of what Nova allows;
//   - masakari: Masakari as installed (defaults kept), notified by the bench at the
//     fault instant, as masakari-hostmonitor would be.
//
// The fault is the host's power cut through its BMC (the policy file's fencing
// entry): the compute dies at once and its BMC then says off, as a host that lost
// its power. Only the round's contender acts: Vigil runs only during its own rounds,
// and Masakari acts only on a notification, which only its rounds send.

// Contenders of `vigil bench nova`.
const (
	ContenderVigil    = "vigil"
	ContenderOracle   = "oracle"
	ContenderMasakari = "masakari"
)

// BenchNovaOptions configure `vigil bench nova`.
type BenchNovaOptions struct {
	Cloud      string // clouds.yaml entry of an admin (boots pinned to hosts, forces services down)
	CloudsFile string // "" : $OS_CLIENT_CONFIG_FILE
	AMQP       string // Nova's versioned notifications for Vigil; "" : Vigil polls alone
	// Config is Vigil's configuration (a policy file). Its fencing section must
	// reach the BMC of every host used: the bench cuts the power through it.
	Config     Config
	Hosts      []string // computes the rounds rotate over
	Zone       string   // their availability zone (admin pins a boot as "zone:host")
	Flavor     string   // flavor ID
	Image      string   // image name
	Rounds     int      // rounds per contender
	Servers    int      // servers per round
	Contenders []string // default: vigil, oracle, masakari
	Interval   time.Duration
	// Within bounds one round's wait for every server ACTIVE elsewhere.
	Within time.Duration
	// Restore, when set, is a command run after the bench powered the host back on
	// and before it checks that the host is usable (the peer's up.sh).
	Restore []string
	// Progress receives the progress bar (stderr).
	Progress io.Writer
}

func (o *BenchNovaOptions) defaults() {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"fake-compute-1", "fake-compute-2", "fake-compute-3"}
	}
	if o.Zone == "" {
		o.Zone = "nova"
	}
	if o.Flavor == "" {
		o.Flavor = "1"
	}
	if o.Image == "" {
		o.Image = "tiny"
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Servers <= 0 {
		o.Servers = 2
	}
	if len(o.Contenders) == 0 {
		o.Contenders = []string{ContenderVigil, ContenderOracle, ContenderMasakari}
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second // vigil serve's default
	}
	if o.Within <= 0 {
		o.Within = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Milestone is a moment of a round, in seconds after the fault.
type Milestone struct {
	Name string  `json:"name"`
	At   float64 `json:"at_s"`
}

// NovaRound is one contender's round.
type NovaRound struct {
	Contender string   `json:"contender"`
	Round     int      `json:"round"`
	Host      string   `json:"host"`
	Servers   []string `json:"servers"`
	// Seconds from the fault (power cut confirmed by the BMC) to every server
	// ACTIVE, no task, on another host.
	Seconds float64 `json:"seconds"`
	// NovaDown: when Nova's API first said the compute was down (or forced down).
	NovaDown   float64     `json:"nova_down_s"`
	Milestones []Milestone `json:"milestones"`
	// Dominant is the longest phase between two milestones.
	Dominant string `json:"dominant"`
	// Evacuations: Nova's evacuate actions per server (exactly 1 each is right).
	Evacuations map[string]int `json:"evacuations"`
	Targets     []string       `json:"targets"` // where the servers ended
	Journal     []string       `json:"journal,omitempty"`
	// RestoreSeconds: powering the host on until it is usable again.
	RestoreSeconds float64 `json:"restore_s"`
	Error          string  `json:"error,omitempty"`
}

// BenchNova runs the benchmark. A round that fails is recorded with its error and
// the bench goes on; an error is returned only when it cannot go on (the host
// could not be restored, the context ended).
func BenchNova(ctx context.Context, o BenchNovaOptions) (NovaReport, error) {
	o.defaults()
	rep := NovaReport{NovaMachine: ThisNovaMachine(), Commit: Commit(), Servers: o.Servers, RoundsEach: o.Rounds, Hosts: o.Hosts, Interval: o.Interval.String(), Contenders: o.Contenders,
		Started: time.Now().UTC()}
	bc, err := newNovaCloud(ctx, o.Cloud, o.CloudsFile)
	if err != nil {
		return rep, err
	}
	image, err := bc.imageID(ctx, o.Image)
	if err != nil {
		return rep, err
	}
	fencer, err := o.Config.Fencer()
	if err != nil {
		return rep, err
	}
	for _, h := range o.Hosts {
		if fencer == nil || !fencer.CanFence(h) {
			return rep, fmt.Errorf("bench nova: no BMC for %s in the policy file's fencing section: the bench cuts its power through it", h)
		}
	}
	for _, c := range o.Contenders {
		switch c {
		case ContenderVigil, ContenderOracle:
		case ContenderMasakari:
			for _, h := range o.Hosts {
				if _, err := bc.masakariHostOf(ctx, h); err != nil {
					return rep, fmt.Errorf("bench nova: masakari: %w", err)
				}
			}
		default:
			return rep, fmt.Errorf("bench nova: unknown contender %q (want vigil, oracle, masakari)", c)
		}
	}
	b := &novaBench{o: o, c: bc, fencer: fencer, image: image, bar: newBar(o.Progress, o.Rounds*len(o.Contenders))}
	defer b.bar.done()
	for _, h := range o.Hosts {
		if err := b.restore(ctx, h); err != nil {
			return rep, fmt.Errorf("bench nova: before the first round: %w", err)
		}
	}
	// Interleaved (round 1 of each, then round 2 ...) so that a drift of the
	// machine's load weighs on every contender alike; the host rotates.
	for r := 1; r <= o.Rounds; r++ {
		for i, c := range o.Contenders {
			host := o.Hosts[(r-1+i)%len(o.Hosts)]
			res, err := b.round(ctx, c, r, host)
			rep.Rounds = append(rep.Rounds, res)
			b.bar.step()
			if err != nil {
				rep.Finished = time.Now().UTC()
				rep.summarize()
				return rep, err
			}
		}
	}
	rep.Finished = time.Now().UTC()
	rep.summarize()
	return rep, nil
}

type novaBench struct {
	o      BenchNovaOptions
	c      *novaCloud
	fencer cloud.Fencer
	image  string
	bar    *bar
}

// round runs one contender's round on host. The error returned is one that stops
// the bench (the host was not restored); the round's own failure is in res.Error.
func (b *novaBench) round(ctx context.Context, contender string, r int, host string) (NovaRound, error) {
	res := NovaRound{Contender: contender, Round: r, Host: host, NovaDown: -1}
	prefix := fmt.Sprintf("vbench-%s-r%d-%d", contender, r, time.Now().UnixNano()%1e6)
	label := fmt.Sprintf("%s round %d on %s", contender, r, host)
	err := b.trial(ctx, contender, host, prefix, label, &res)
	if err != nil {
		res.Error = err.Error()
	}
	b.bar.phase(label + ": restoring the host")
	t := time.Now()
	rerr := b.restore(ctx, host)
	res.RestoreSeconds = time.Since(t).Seconds()
	b.bar.phase(label + ": deleting the servers")
	if derr := b.c.deleteAll(context.WithoutCancel(ctx), prefix, 3*time.Minute); derr != nil && rerr == nil {
		rerr = derr
	}
	return res, rerr
}

func (b *novaBench) trial(ctx context.Context, contender, host, prefix, label string, res *NovaRound) error {
	b.bar.phase(label + ": booting")
	ids, err := b.bootOn(ctx, prefix, host)
	if err != nil {
		return err
	}
	res.Servers = ids
	var act actor
	switch contender {
	case ContenderVigil:
		b.bar.phase(label + ": starting Vigil")
		v, err := b.startVigil(ctx, ids)
		if err != nil {
			return err
		}
		defer v.stop()
		act = v
	case ContenderOracle:
		act = &oracleActor{c: b.c, host: host, ids: ids}
	case ContenderMasakari:
		mh, err := b.c.masakariHostOf(ctx, host)
		if err != nil {
			return err
		}
		if err := b.c.unmaintain(ctx, mh); err != nil {
			return err
		}
		act = &masakariActor{c: b.c, host: host}
	}
	b.bar.phase(label + ": cutting the power")
	fault, err := b.cutPower(ctx, host)
	if err != nil {
		return err
	}
	watch, stopWatch := b.watchNova(ctx, host, fault)
	b.bar.phaseSince(label+": waiting for every server ACTIVE elsewhere", fault)
	actErr := make(chan error, 1)
	go func() { actErr <- act.act(ctx, fault) }()
	active, targets, err := b.activeElsewhere(ctx, ids, host, actErr)
	stopWatch()
	res.NovaDown = (<-watch).Seconds()
	if err != nil {
		return err
	}
	res.Seconds = active.Sub(fault).Seconds()
	res.Targets = targets
	res.Evacuations = map[string]int{}
	for _, id := range ids {
		res.Evacuations[id] = b.c.evacuations(ctx, id)
	}
	res.Milestones, res.Journal = act.milestones(ctx, fault)
	if res.NovaDown >= 0 {
		res.Milestones = append(res.Milestones, Milestone{"nova says down", res.NovaDown})
	}
	res.Milestones = append(res.Milestones, Milestone{endMilestone, res.Seconds})
	sortMilestones(res.Milestones)
	res.Dominant = dominant(res.Milestones)
	return nil
}

// bootOn boots the round's servers on host and waits until they are ACTIVE there.
func (b *novaBench) bootOn(ctx context.Context, prefix, host string) ([]string, error) {
	if err := b.c.boot(ctx, prefix, b.o.Servers, b.o.Zone, host, b.o.Flavor, b.image); err != nil {
		return nil, err
	}
	var ids []string
	err := pollUntil(ctx, 3*time.Minute, fmt.Sprintf("%d servers %s* ACTIVE on %s", b.o.Servers, prefix, host), func() (bool, string, error) {
		ss, err := b.c.servers(ctx, prefix)
		if err != nil {
			return false, "", err
		}
		ids = ids[:0]
		var states []string
		ok := len(ss) == b.o.Servers
		for _, s := range ss {
			ids = append(ids, s.ID)
			states = append(states, s.Status+"@"+s.Host)
			if s.Status == "ERROR" {
				return false, "", fmt.Errorf("server %s went to ERROR while booting on %s", s.Name, host)
			}
			ok = ok && s.settled() && s.Host == host
		}
		return ok, strings.Join(states, " "), nil
	})
	return ids, err
}

// cutPower is the fault: the host's power off through its BMC, confirmed off. The
// fault instant is the confirmation: the compute is gone then.
func (b *novaBench) cutPower(ctx context.Context, host string) (time.Time, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.fencer.PowerOff(cctx, host); err != nil {
		return time.Time{}, fmt.Errorf("cut the power of %s through its BMC: %w", host, err)
	}
	for {
		p, err := b.fencer.PowerStatus(cctx, host)
		if err == nil && p == model.PowerOff {
			return time.Now(), nil
		}
		if cctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%s's BMC does not say off after the power cut (last %v, %v)", host, p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchNova records when Nova's API first says the host's compute is down (or
// forced down): the moment every contender but the oracle is bound by.
func (b *novaBench) watchNova(ctx context.Context, host string, fault time.Time) (<-chan time.Duration, func()) {
	out := make(chan time.Duration, 1)
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			if svc, err := b.c.service(wctx, host); err == nil && (svc.State == "down" || svc.Forced) {
				out <- time.Since(fault)
				return
			}
			select {
			case <-wctx.Done():
				out <- -time.Second
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return out, cancel
}

// activeElsewhere polls until every server is ACTIVE with no task on a host other
// than from, and returns when that was first seen and where they are.
func (b *novaBench) activeElsewhere(ctx context.Context, ids []string, from string, actErr <-chan error) (time.Time, []string, error) {
	deadline := time.Now().Add(b.o.Within)
	for {
		var targets []string
		ok := true
		for _, id := range ids {
			s, err := b.c.server(ctx, id)
			if err != nil || !s.settled() || s.Host == from || s.Host == "" {
				ok = false
				break
			}
			targets = append(targets, s.Host)
		}
		if ok {
			return time.Now(), targets, nil
		}
		select {
		case err := <-actErr:
			if err != nil {
				return time.Time{}, nil, err
			}
		default:
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil, fmt.Errorf("servers %v not all ACTIVE off %s within %s", ids, from, b.o.Within)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// restore powers host on through its BMC, runs the Restore command if any, then
// forces its compute service up and enables it (Vigil and the oracle force it
// down, Masakari disables it) until Nova says it is up and usable and placement
// offers room on it again.
func (b *novaBench) restore(ctx context.Context, host string) error {
	ctx = context.WithoutCancel(ctx) // a host is never left down, even on ^C
	if on, ok := b.fencer.(interface {
		PowerOn(context.Context, string) error
	}); ok {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := on.PowerOn(pctx, host)
		cancel()
		if err != nil {
			return fmt.Errorf("power %s on through its BMC: %w", host, err)
		}
	}
	if len(b.o.Restore) > 0 {
		cmd := exec.CommandContext(ctx, b.o.Restore[0], b.o.Restore[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("restore command %q: %w\n%s", strings.Join(b.o.Restore, " "), err, out)
		}
	}
	return pollUntil(ctx, 3*time.Minute, host+" up, enabled, not forced down, and offered by placement", func() (bool, string, error) {
		svc, err := b.c.service(ctx, host)
		if err != nil {
			return false, "", err
		}
		if svc.Forced || svc.Status != "enabled" {
			// Refused (400) while the restarted compute still has "done" evacuation
			// records to clean up: tried again at the next poll.
			_ = b.c.putService(ctx, svc.ID, map[string]any{"forced_down": false, "status": "enabled"})
			return false, fmt.Sprintf("state %s, status %s, forced_down %v", svc.State, svc.Status, svc.Forced), nil
		}
		if svc.State != "up" {
			return false, "state " + svc.State, nil
		}
		dis, err := b.c.disabledTrait(ctx, host)
		if err != nil {
			return false, "", err
		}
		if dis {
			_ = b.c.putService(ctx, svc.ID, map[string]any{"status": "enabled"})
			return false, "placement trait COMPUTE_STATUS_DISABLED still set", nil
		}
		return true, "", nil
	})
}

// actor is a contender's part of a round after the fault.
type actor interface {
	// act is what the contender does at the fault instant (nothing for Vigil: it
	// finds out by itself).
	act(ctx context.Context, fault time.Time) error
	// milestones are the round's moments as the contender recorded them.
	milestones(ctx context.Context, fault time.Time) ([]Milestone, []string)
}

func since(fault, t time.Time) float64 { return t.Sub(fault).Seconds() }

// oracleActor forces the service down (retried until Nova accepts) and evacuates
// every server at once.
type oracleActor struct {
	c                 *novaCloud
	host              string
	ids               []string
	forced, evacuated time.Time
}

func (a *oracleActor) act(ctx context.Context, fault time.Time) error {
	svc, err := a.c.service(ctx, a.host)
	if err != nil {
		return err
	}
	if err := pollUntil(ctx, 60*time.Second, "oracle: force "+a.host+" down", func() (bool, string, error) {
		err := a.c.putService(ctx, svc.ID, map[string]any{"forced_down": true})
		return err == nil, fmt.Sprint(err), nil
	}); err != nil {
		return err
	}
	a.forced = time.Now()
	for _, id := range a.ids {
		if err := a.c.action(ctx, id, map[string]any{"evacuate": map[string]any{}}); err != nil {
			return fmt.Errorf("oracle: evacuate %s: %w", id, err)
		}
	}
	a.evacuated = time.Now()
	return nil
}

func (a *oracleActor) milestones(_ context.Context, fault time.Time) ([]Milestone, []string) {
	return []Milestone{{"forced down", since(fault, a.forced)}, {"evacuations issued", since(fault, a.evacuated)}}, nil
}

// masakariActor posts the host-down notification at the fault instant.
type masakariActor struct {
	c        *novaCloud
	host     string
	uuid     string
	notified time.Time
}

func (a *masakariActor) act(ctx context.Context, fault time.Time) error {
	id, err := a.c.notifyHostDown(ctx, a.host, fault)
	if err != nil {
		return err
	}
	a.uuid, a.notified = id, time.Now()
	return nil
}

func (a *masakariActor) milestones(ctx context.Context, fault time.Time) ([]Milestone, []string) {
	ms := []Milestone{{"notified", since(fault, a.notified)}}
	// Masakari unlocks each server after its evacuation and then ends the
	// notification: wait (bounded) for its own end.
	var st string
	_ = pollUntil(ctx, 2*time.Minute, "Masakari's notification "+a.uuid+" ends", func() (bool, string, error) {
		s, err := a.c.notificationStatus(ctx, a.uuid)
		st = s
		return err == nil && (s == "finished" || s == "error" || s == "failed" || s == "ignored"), s, nil
	})
	ms = append(ms, Milestone{"notification " + st, since(fault, time.Now())})
	return ms, []string{"notification " + a.uuid + ": " + st}
}

// vigilActor is Vigil running during its round.
type vigilActor struct {
	app    *App
	host   string
	cancel context.CancelFunc
	done   chan struct{}
	dir    string

	mu     sync.Mutex
	events []model.Event
}

// startVigil starts Vigil as `vigil serve --policy FILE [--amqp URL]` does (a fresh
// SQLite file: it knows nothing of earlier rounds), waits until it has listed the
// cloud, and protects the round's servers with a cluster under the default policy.
func (b *novaBench) startVigil(ctx context.Context, ids []string) (*vigilActor, error) {
	dir, err := os.MkdirTemp("", "vigil-bench-nova-")
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(ctx)
	v := &vigilActor{cancel: cancel, done: make(chan struct{}), dir: dir}
	fail := func(err error) (*vigilActor, error) {
		cancel()
		os.RemoveAll(dir)
		return nil, err
	}
	drv, err := openstack.New(vctx, openstack.Config{CloudName: b.o.Cloud, CloudsFile: b.o.CloudsFile})
	if err != nil {
		return fail(err)
	}
	// The fabric fence as `vigil serve` sets it up (the round's servers have no
	// port or volume: it finds nothing to cut, but asks, as it would).
	fab, err := fabric.New(vctx, fabric.Config{CloudName: b.o.Cloud, CloudsFile: b.o.CloudsFile, ServiceCloud: b.o.Config.ServiceCloud})
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pushed := make(chan model.Observation, 256)
	fencer, err := b.o.Config.Fencer() // a fresh one per run, as a fresh `vigil serve`
	if err != nil {
		return fail(err)
	}
	v.app, err = Start(vctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(dir, "vigil.db"), Interval: b.o.Interval, FullEvery: 5 * time.Minute,
		Config: b.o.Config, Compute: drv, Fencer: fencer, Fabric: fab, Log: log, Pushed: pushed,
		OnEvent: func(e model.Event) { v.mu.Lock(); v.events = append(v.events, e); v.mu.Unlock() }})
	if err != nil {
		return fail(fmt.Errorf("start Vigil: %w", err))
	}
	var wg sync.WaitGroup
	if b.o.AMQP != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = Notifications(vctx, notifications.Config{URL: b.o.AMQP, Logger: log}, pushed)
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = v.app.Run(vctx) }()
	go func() { wg.Wait(); close(v.done) }()
	err = pollUntil(ctx, time.Minute, "Vigil protects the round's servers", func() (bool, string, error) {
		if drv.Calls()["list-servers"] == 0 {
			return false, "no listing yet", nil
		}
		err := v.app.Engine.CreateCluster(ctx, model.Cluster{Name: "bench", Members: ids, Desired: len(ids), Policy: "default"})
		if err != nil && !strings.Contains(err.Error(), "unknown server") {
			return false, "", err
		}
		return err == nil, fmt.Sprint(err), nil
	})
	if err != nil {
		v.stop()
		return nil, err
	}
	// Two polls with the host up and its servers protected: Vigil has seen the
	// world as it was before the fault.
	time.Sleep(2 * b.o.Interval)
	return v, nil
}

func (v *vigilActor) act(context.Context, time.Time) error { return nil }

func (v *vigilActor) stop() {
	v.cancel()
	select {
	case <-v.done:
	case <-time.After(30 * time.Second):
	}
	os.RemoveAll(v.dir)
}

// milestones reads Vigil's journal: its first verdict on the host after the fault,
// the incident's opening, and its steps (fence, force-down, evacuations) as the
// executor recorded them.
func (v *vigilActor) milestones(ctx context.Context, fault time.Time) ([]Milestone, []string) {
	var ms []Milestone
	var journal []string
	subject := "host/"
	v.mu.Lock()
	for _, e := range v.events {
		if e.At.Before(fault) {
			continue
		}
		if len(journal) < 40 {
			journal = append(journal, fmt.Sprintf("%+7.2fs %-8s %s %s", since(fault, e.At), e.Kind, e.Subject, e.Message))
		}
		if !strings.HasPrefix(e.Subject, subject) {
			continue
		}
		switch {
		case e.Kind == "verdict" && !hasMilestone(ms, "host verdict"):
			// "down for 10.2s, at least the grace period 10s": Vigil saw the
			// service down that long before (the policy's host_down_grace).
			if m := downFor.FindStringSubmatch(e.Message); m != nil {
				if d, err := strconv.ParseFloat(m[1], 64); err == nil {
					ms = append(ms, Milestone{"Vigil sees it down", since(fault, e.At) - d})
				}
			}
			ms = append(ms, Milestone{"host verdict", since(fault, e.At)})
		case e.Kind == "incident" && strings.Contains(e.Message, " opened ") && !hasMilestone(ms, "incident opened"):
			ms = append(ms, Milestone{"incident opened", since(fault, e.At)})
		}
	}
	v.mu.Unlock()
	ins, err := v.app.Store.Incidents(ctx, 20)
	if err != nil {
		return ms, append(journal, "stored incidents: "+err.Error())
	}
	var firstEvac, lastEvac, fabricCut time.Time
	for _, in := range ins {
		if in.Opened.Before(fault) {
			continue
		}
		for _, st := range in.Steps {
			switch st.Action {
			case model.ActFence:
				ms = append(ms, Milestone{"fence started", since(fault, st.Started)}, Milestone{"fence confirmed", since(fault, st.Finished)})
			case model.ActMarkDown:
				ms = append(ms, Milestone{"force-down started", since(fault, st.Started)}, Milestone{"forced down", since(fault, st.Finished)})
			case model.ActPortsDown, model.ActDetachVols:
				if st.Finished.After(fabricCut) {
					fabricCut = st.Finished
				}
			case model.ActEvacuate:
				if !st.Started.IsZero() && (firstEvac.IsZero() || st.Started.Before(firstEvac)) {
					firstEvac = st.Started
				}
				if !st.Issued.IsZero() && st.Issued.After(lastEvac) {
					lastEvac = st.Issued
				}
			}
		}
	}
	if !fabricCut.IsZero() {
		ms = append(ms, Milestone{"fabric cut", since(fault, fabricCut)})
	}
	if !firstEvac.IsZero() {
		ms = append(ms, Milestone{"first evacuate", since(fault, firstEvac)})
	}
	if !lastEvac.IsZero() {
		ms = append(ms, Milestone{"last evacuate issued", since(fault, lastEvac)})
	}
	return ms, journal
}

var downFor = regexp.MustCompile(`down for ([0-9.]+)s`)

func hasMilestone(ms []Milestone, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// server shows one server.
func (c *novaCloud) server(ctx context.Context, id string) (benchServer, error) {
	var doc struct {
		Server benchServer `json:"server"`
	}
	_, err := c.compute.Get(ctx, c.compute.ServiceURL("servers", id), &doc, nil)
	return doc.Server, err
}

// evacuations counts the evacuate actions Nova recorded for a server (-1: unread).
func (c *novaCloud) evacuations(ctx context.Context, id string) int {
	var doc struct {
		Actions []struct {
			Action string `json:"action"`
		} `json:"instanceActions"`
	}
	if _, err := c.compute.Get(ctx, c.compute.ServiceURL("servers", id, "os-instance-actions"), &doc, nil); err != nil {
		return -1
	}
	n := 0
	for _, a := range doc.Actions {
		if a.Action == "evacuate" {
			n++
		}
	}
	return n
}
