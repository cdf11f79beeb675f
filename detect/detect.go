package detect

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Rules, as recorded in verdicts.
const (
	RuleServerActive    = "server-active"
	RuleServerError     = "server-error"
	RuleServerStopped   = "server-stopped-unexpectedly"
	RuleStoppedByOwner  = "server-stopped-by-owner"
	RuleServerBusy      = "server-task-in-progress"
	RuleServerMissing   = "server-missing"
	RuleServerHostDown  = model.RuleServerHostDown
	RuleServerMigration = model.RuleServerMigrationInterrupted
	// RuleServerHistoryUnread: a protected server is down in place, and whether a
	// migration was under way is not known (Vigil did not watch it since its last
	// move, e.g. after a restart): the cloud's action log is read first.
	RuleServerHistoryUnread = model.RuleServerHistoryUnread
	RuleHostUp              = "host-service-up"
	RuleHostSuspect         = "host-service-down-within-grace"
	RuleHostDown            = "host-service-down-past-grace"
	RuleHostMaintenance     = "host-maintenance"
	// RuleHostForcedReporting: the service is forced down (by an operator, another
	// tool, or Vigil itself) but its heartbeats still advance: alive.
	RuleHostForcedReporting = "host-forced-down-but-reporting"
	// RuleHostForcedSilent: forced down and its heartbeats stopped.
	RuleHostForcedSilent = "host-forced-down-and-silent"
)

// Config holds the detector's thresholds.
type Config struct {
	// HostDownGrace: a compute service down this long means the host is dead, for a
	// host with no grace of its own (see SetGrace).
	HostDownGrace time.Duration
	// ServiceDownTime: how long a compute's heartbeat (its service's updated_at) may
	// stay unchanged, on the cloud's clock, before it is silent: Nova's
	// service_down_time (60 s unless the cloud sets it). Used where Nova's own
	// up/down says nothing: a service that is forced down.
	ServiceDownTime time.Duration
	// PhiSilent: the suspicion (phi) at which a heartbeat path is silent
	// (DefaultPhiSilent when 0).
	PhiSilent float64
	// PartitionMinHosts, PartitionFraction and PartitionWindow: when at least this
	// many agent hosts, and this share of them, go silent on every path within the
	// window while they hear each other, Vigil is cut off (controller-partitioned).
	PartitionMinHosts int
	PartitionFraction float64
	PartitionWindow   time.Duration
	// AgentWarmup: when host agents report to Vigil, how long after the detector's
	// first observation a host none of whose agent paths was heard yet may not be
	// judged failed (it is suspect meanwhile): a Vigil that just (re)started has not
	// listened yet, and a host heard on its storage path must not be fenced on
	// Nova's word before it could be heard (sim seed 8102). Zero: no agents.
	AgentWarmup time.Duration
	// DisabledIsMaintenance: a host whose compute service Nova shows disabled is in
	// maintenance (operators disable a host to take it out of service; Nova's
	// disabled means "no new servers here").
	DisabledIsMaintenance bool
}

// RuleHostAgentWarmup: Vigil has not listened to the agents long enough since it
// started to call a host without a heard agent failed.
const RuleHostAgentWarmup = "host-agent-warmup"

// DefaultServiceDownTime is Nova's default service_down_time.
const DefaultServiceDownTime = 60 * time.Second

// View is the detector's current picture of the cloud.
type View struct {
	Hosts    map[string]model.Host
	Servers  map[string]model.Server
	Verdicts map[model.Subject]model.Verdict
	// CloudErr is set while the cloud cannot be seen; CloudErrSince when that began.
	CloudErr      string
	CloudErrSince time.Time
	// LastSeen is the time of the last successful full observation.
	LastSeen time.Time
	// CloudAt is the cloud's own clock at the last host listing (zero: unknown).
	CloudAt time.Time
	// FenceDoubt names, per host, why its fence device is not trusted (its BMC said
	// off while the host reported, or its identity is another host's or changed).
	// A doubted BMC is never used as proof.
	FenceDoubt map[string]string
	// Running names, per server (domain UUID), the hosts whose agent, heard now,
	// last reported its domain running: a copy runs there (a server must never be
	// evacuated from a host listed here).
	Running map[string][]string
}

// Detector holds the state that verdicts need across observations.
type Detector struct {
	cfg       Config
	started   time.Time // the first observation's time (AgentWarmup counts from it)
	protected map[string]bool
	hostMaint map[string]string // host -> why it is in maintenance
	// beneath: per host in maintenance, what its signals say beneath it (the verdict
	// it would have): a death under maintenance is told, and its start kept.
	beneath map[string]model.Verdict
	view    View
	// dirty servers are re-judged at the next step; the others keep their verdict
	// (their observation and their host's verdict did not change).
	dirty map[string]bool
	// grace per host (SetGrace); Config.HostDownGrace for the others.
	grace map[string]time.Duration
	// heartbeats per host, to tell a compute that still reports from a flag.
	beats map[string]heartbeat
	// identity is the first BMC identity seen per host.
	identity map[string]string
	// forcedByVigil: hosts whose service Vigil itself forced down (the journal says
	// so), with when it last did (Vigil's clock).
	forcedByVigil map[string]time.Time
	// moving: servers last seen migrating or resizing and not seen running since,
	// with what was seen, or whose action log shows such a move since.
	moving map[string]string
	// idleAt: per server, its updated_at (the cloud's clock) when it was last seen
	// ACTIVE with no task. A move the action log shows as started before it is over.
	idleAt map[string]time.Time
	// historyAt: per server, its updated_at when its action log was last read.
	historyAt map[string]time.Time
	// offSince: when (the cloud's clock, else Vigil's) each host's BMC was first seen
	// saying off, in its current run of "off" answers.
	offSince, offSinceVigil map[string]time.Time
	offBeat                 map[string]time.Time // the first heartbeat after the BMC said off
	// powerOnSeen: hosts whose BMC said on in this detector's life.
	powerOnSeen map[string]bool

	// Agent signals (agent.go).
	paths     map[pathKey]*path
	hostPaths map[string][]string        // host -> its path names, sorted
	firstBeat map[string]time.Time       // host -> arrival of its first beat
	peers     map[string]peerView        // reporter -> what it last said it hears
	heardBy   map[string]map[string]bool // host -> reporters whose last view names it
	reports   map[string]reportView      // host -> its agent's last report
	// agentHeard: whether each agent was heard at the last step.
	agentHeard   map[string]bool
	runningDirty bool
	partitioned  map[string]partition
	hostMonitor  map[string]model.MonitorReport // host -> its COMPUTE_HOST STOPPED report
	processDown  map[string]model.MonitorReport // host/process -> its PROCESS STOPPED report
	vmReports    map[string]model.MonitorReport // server -> its last VM report
	// changedAt: when (Vigil's clock) each server's record last changed: a host
	// report or a monitor's report older than that is older than Nova's state.
	changedAt map[string]time.Time
}

// New returns a detector with an empty view.
func New(cfg Config) *Detector {
	if cfg.ServiceDownTime <= 0 {
		cfg.ServiceDownTime = DefaultServiceDownTime
	}
	if cfg.PhiSilent <= 0 {
		cfg.PhiSilent = DefaultPhiSilent
	}
	if cfg.PartitionMinHosts <= 0 {
		cfg.PartitionMinHosts = DefaultPartitionMinHosts
	}
	if cfg.PartitionFraction <= 0 {
		cfg.PartitionFraction = DefaultPartitionFraction
	}
	if cfg.PartitionWindow <= 0 {
		cfg.PartitionWindow = DefaultPartitionWindow
	}
	return &Detector{cfg: cfg, protected: map[string]bool{}, hostMaint: map[string]string{}, beneath: map[string]model.Verdict{}, dirty: map[string]bool{},
		beats: map[string]heartbeat{}, identity: map[string]string{}, forcedByVigil: map[string]time.Time{},
		moving: map[string]string{}, idleAt: map[string]time.Time{}, historyAt: map[string]time.Time{}, offSince: map[string]time.Time{}, offSinceVigil: map[string]time.Time{}, offBeat: map[string]time.Time{},
		powerOnSeen: map[string]bool{}, paths: map[pathKey]*path{}, hostPaths: map[string][]string{}, firstBeat: map[string]time.Time{},
		peers: map[string]peerView{}, heardBy: map[string]map[string]bool{}, reports: map[string]reportView{}, agentHeard: map[string]bool{},
		partitioned: map[string]partition{}, hostMonitor: map[string]model.MonitorReport{}, processDown: map[string]model.MonitorReport{},
		vmReports: map[string]model.MonitorReport{}, changedAt: map[string]time.Time{},
		view: View{Hosts: map[string]model.Host{}, Servers: map[string]model.Server{},
			Verdicts: map[model.Subject]model.Verdict{}, FenceDoubt: map[string]string{}, Running: map[string][]string{}}}
}

// SetGrace sets each host's grace: how long its compute service must be down before
// it is dead (the policies of the servers on it decide; see the engine).
func (d *Detector) SetGrace(grace map[string]time.Duration) { d.grace = grace }

func (d *Detector) graceOf(host string) time.Duration {
	if g, ok := d.grace[host]; ok {
		return g
	}
	return d.cfg.HostDownGrace
}

// SetForcedByVigil names the hosts whose service Vigil itself forced down, with when
// it last did (Vigil's clock: the journal's mark-down step), so that evidence can
// tell Vigil's force-down from someone else's, and its bump of updated_at from a
// heartbeat written after it.
func (d *Detector) SetForcedByVigil(hosts map[string]time.Time) { d.forcedByVigil = hosts }

// Protect sets the servers that belong to clusters: only these are reported missing.
func (d *Detector) Protect(ids []string) {
	for id := range d.protected {
		d.dirty[id] = true
	}
	d.protected = make(map[string]bool, len(ids))
	for _, id := range ids {
		d.protected[id] = true
		d.dirty[id] = true
	}
}

// Protected reports whether the server belongs to a cluster.
func (d *Detector) Protected(id string) bool { return d.protected[id] }

// SetMaintenance puts a host in (or out of) maintenance: it gets no failure verdict.
func (d *Detector) SetMaintenance(host string, on bool) {
	why := ""
	if on {
		why = "an operator put the host in maintenance"
	}
	d.SetMaintenanceWhy(host, why)
}

// SetMaintenanceWhy puts a host in maintenance, saying why (the evidence of its
// verdict), or out of it (why empty).
func (d *Detector) SetMaintenanceWhy(host, why string) {
	if why != "" {
		d.hostMaint[host] = why
	} else {
		delete(d.hostMaint, host)
	}
	d.dirtyHost(host)
}

// View returns the current picture. The maps are shared: callers must not modify them.
func (d *Detector) View() *View { return &d.view }

// Step folds one observation into the view and returns the verdicts that changed.
func (d *Detector) Step(now time.Time, obs model.Observation) []model.Verdict {
	v := &d.view
	if d.started.IsZero() {
		d.started = now
	}
	// Agents and monitors are not the compute API: their signals are taken in even
	// when the compute API fails, and judged on at the next step that succeeds.
	d.foldAgents(now, obs.Agents)
	d.foldMonitors(now, obs.Monitors)
	if obs.Err != "" {
		if v.CloudErr == "" {
			v.CloudErrSince = now
		}
		v.CloudErr = obs.Err
		return nil // nothing may be concluded from an observation that failed
	}
	if obs.Hosts != nil {
		// Only a listing of the cloud (every poll lists the hosts) proves that the
		// compute API answers again; a notification pushed during an outage does not.
		v.CloudErr, v.CloudErrSince = "", time.Time{}
	}
	if obs.Hosts != nil {
		if !obs.CloudAt.IsZero() {
			v.CloudAt = obs.CloudAt
		}
		seen := make(map[string]bool, len(obs.Hosts))
		for _, h := range obs.Hosts {
			old, ok := v.Hosts[h.Name]
			if ok && h.Power == model.PowerUnknown {
				h.Power = old.Power
			}
			if h.Power == model.PowerOn {
				d.powerOnSeen[h.Name] = true
			}
			d.beat(now, h, old, ok)
			v.Hosts[h.Name] = h
			seen[h.Name] = true
		}
		for name := range v.Hosts {
			if !seen[name] {
				delete(v.Hosts, name)
				delete(v.Verdicts, model.Subject{Kind: model.KindHost, ID: name})
				delete(d.beats, name)
			}
		}
	}
	for name, p := range obs.Power {
		if p == model.PowerOn {
			d.powerOnSeen[name] = true
		}
		if h, ok := v.Hosts[name]; ok {
			h.Power = p
			v.Hosts[name] = h
		}
	}
	d.checkFences(now, obs)
	if obs.Full {
		v.LastSeen = obs.At
		listed := make(map[string]bool, len(obs.Servers))
		for _, s := range obs.Servers {
			listed[s.ID] = true
		}
		for id := range v.Servers {
			if !listed[id] {
				delete(v.Servers, id)
				d.dirty[id] = true
			}
		}
	}
	for _, s := range obs.Servers {
		if s.Status == model.StatusDeleted {
			if _, ok := v.Servers[s.ID]; ok || d.protected[s.ID] {
				delete(v.Servers, s.ID)
				d.dirty[s.ID] = true
			}
			continue
		}
		old, had := v.Servers[s.ID]
		if !had && !obs.Full && v.LastSeen.IsZero() {
			// Before Vigil's first full listing (it just started) a notification
			// cannot be told from a late one: the listing, moments away, decides.
			continue
		}
		if had && !obs.Full {
			if stale(old, s) {
				continue // older than what is known (a late notification): it must not undo newer state
			}
			s = merge(old, s)
		}
		if !had || old != s {
			v.Servers[s.ID] = s
			d.dirty[s.ID] = true
			d.changedAt[s.ID] = now
			d.trackMove(s)
		}
	}
	for _, id := range obs.Deleted {
		delete(v.Servers, id)
		d.dirty[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(obs.Actions)) {
		d.readHistory(id, obs.Actions[id])
	}
	return d.judge(now)
}

// The instance actions (Nova's names) that move a server to another host.
var moveActions = []string{"live-migration", "migrate", "resize"}

// NeedHistory names the protected servers whose action log the detector needs
// before it may call them failed in place (see RuleServerHistoryUnread): servers,
// when given, are newer than the view (a listing not yet folded in). The shell
// reads each log once per change of the server and passes it in Observation.Actions.
func (d *Detector) NeedHistory(servers []model.Server) []string {
	var ids []string
	newer := make(map[string]bool, len(servers))
	for _, s := range servers {
		newer[s.ID] = true
		if d.historyUnread(s) {
			ids = append(ids, s.ID)
		}
	}
	for id, s := range d.view.Servers {
		if !newer[id] && d.historyUnread(s) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// downInPlace: the server's status says it does not run, though its owner did not
// stop it.
func downInPlace(s model.Server) bool {
	return s.Status == model.StatusError || s.Intent != model.IntentOff &&
		(s.Status == model.StatusShutoff || s.Status == model.StatusPaused || s.Status == model.StatusSuspended)
}

// historyUnread: a protected server down in place, not known to be moving, whose
// action log was not read since it last changed. Vigil may not have watched it
// since its last move (it was down, or restarted, and a detector's memory of what
// it saw is not kept across a restart); the cloud's own log is.
func (d *Detector) historyUnread(s model.Server) bool {
	if !d.protected[s.ID] || s.Status == model.StatusDeleted || !downInPlace(s) {
		return false
	}
	if _, ok := d.moving[s.ID]; ok {
		return false
	}
	if hv, ok := d.view.Verdicts[model.Subject{Kind: model.KindHost, ID: s.Host}]; ok && hv.Failed {
		return false // its host's incident answers it, and checks its task itself
	}
	at, read := d.historyAt[s.ID]
	return !read || !at.Equal(s.Updated)
}

// readHistory folds in a server's action log: a move started since the server was
// last seen running idle (or never seen so) may have put its copy on the
// destination, as one seen migrating may.
func (d *Detector) readHistory(id string, acts []model.InstanceAction) {
	s, ok := d.view.Servers[id]
	if !ok {
		return
	}
	d.historyAt[id] = s.Updated
	d.dirty[id] = true
	idle, seen := d.idleAt[id]
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if !slices.Contains(moveActions, a.Action) {
			continue
		}
		if !seen || !idle.IsZero() && !a.Start.Before(idle) {
			how := fmt.Sprintf("the cloud's action log shows a %s started at %s", a.Action, a.Start.UTC().Format(time.RFC3339))
			if seen {
				how += fmt.Sprintf(", after it was last seen running (updated %s),", idle.UTC().Format(time.RFC3339))
			} else {
				how += ", and Vigil has not seen it running since then,"
			}
			d.moving[id] = how
		}
		return // only the latest move matters
	}
}

// judge recomputes verdicts for every host and every known or protected server.
func (d *Detector) judge(now time.Time) []model.Verdict {
	var changed []model.Verdict
	var hostChanged map[string]bool
	d.checkPartition(now)
	d.refreshAgentHeard(now)
	for _, name := range slices.Sorted(maps.Keys(d.view.Hosts)) {
		subj := model.Subject{Kind: model.KindHost, ID: name}
		old, had := d.view.Verdicts[subj]
		v, ok := d.update(now, d.hostVerdict(now, d.view.Hosts[name]))
		if ok {
			changed = append(changed, v)
		}
		if !had || old.Failed != v.Failed || old.Host != v.Host {
			if hostChanged == nil {
				hostChanged = map[string]bool{}
			}
			hostChanged[name] = true
		}
	}
	if hostChanged != nil {
		for id, s := range d.view.Servers {
			if hostChanged[s.Host] {
				d.dirty[id] = true
			}
		}
	}
	changed = append(changed, d.agentVerdicts(now)...)
	ids := slices.Sorted(maps.Keys(d.dirty))
	clear(d.dirty)
	for _, id := range ids {
		s, ok := d.view.Servers[id]
		var nv model.Verdict
		if !ok {
			delete(d.moving, id)
			delete(d.idleAt, id)
			delete(d.historyAt, id)
			delete(d.changedAt, id)
			delete(d.vmReports, id)
			if !d.protected[id] {
				delete(d.view.Verdicts, model.Subject{Kind: model.KindServer, ID: id})
				continue
			}
			if d.view.LastSeen.IsZero() {
				d.dirty[id] = true // judged after the first full listing
				continue           // no full listing yet: absence proves nothing
			}
			nv = serverVerdict(id, model.ServerFailed, true, RuleServerMissing,
				fmt.Sprintf("server %s is absent from the full listing at %s", id, d.view.LastSeen.Format(time.RFC3339)))
			nv.Fault = model.FaultMissing
		} else {
			nv = d.serverVerdict(s)
		}
		if v, ok := d.update(now, nv); ok {
			changed = append(changed, v)
		}
	}
	return changed
}

// update stores a verdict. A verdict whose health and rule did not change keeps its
// Since; it is reported as changed only when its conclusion changed.
func (d *Detector) update(now time.Time, nv model.Verdict) (model.Verdict, bool) {
	nv.At = now
	old, ok := d.view.Verdicts[nv.Subject]
	if ok && old.Rule == nv.Rule && old.Failed == nv.Failed {
		nv.Since = old.Since
		d.view.Verdicts[nv.Subject] = nv
		return nv, false
	}
	if nv.Since.IsZero() {
		nv.Since = now
	}
	d.view.Verdicts[nv.Subject] = nv
	return nv, true
}

func serverVerdict(id string, h model.ServerHealth, failed bool, rule string, evidence ...string) model.Verdict {
	return model.Verdict{Subject: model.Subject{Kind: model.KindServer, ID: id}, Server: string(h),
		Failed: failed, Rule: rule, Evidence: evidence}
}

// serverVerdict judges a server, and says what kind of failure a failed one has
// (its Fault picks the policy's ladder).
func (d *Detector) serverVerdict(s model.Server) model.Verdict {
	v := d.serverVerdictOf(s)
	if v.Failed && v.Fault == "" {
		v.Fault = model.FaultCrashed
	}
	if copies := d.copiesElsewhere(s); copies != "" {
		v.Evidence = append(v.Evidence, copies)
	}
	return v
}

func (d *Detector) serverVerdictOf(s model.Server) model.Verdict {
	ev := fmt.Sprintf("status %s on host %s", s.Status, s.Host)
	if s.TaskState != "" {
		ev += ", task " + s.TaskState
	}
	// A server that failed mid-migration stays one whatever its host does next: its
	// copy may run on the migration's destination, so its host's failure (and fence)
	// must not make it look like one more server to evacuate from there.
	if how, ok := d.moving[s.ID]; ok && downInPlace(s) {
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerMigration, ev,
			fmt.Sprintf("%s and not running since: its copy may run on the migration's destination", how))
	}
	if hv, ok := d.view.Verdicts[model.Subject{Kind: model.KindHost, ID: s.Host}]; ok && hv.Failed {
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerHostDown, ev,
			fmt.Sprintf("its host %s is %s (%s)", s.Host, hv.Host, hv.Rule))
	}
	if s.Status == model.StatusActive {
		if s.TaskState != "" {
			return serverVerdict(s.ID, model.ServerRecovering, false, RuleServerBusy, ev)
		}
		if s.Intent != model.IntentOff {
			if v, ok := d.signalVerdict(s); ok {
				return v
			}
		}
		return serverVerdict(s.ID, model.ServerHealthy, false, RuleServerActive, ev)
	}
	if d.historyUnread(s) {
		return serverVerdict(s.ID, model.ServerUnknown, false, RuleServerHistoryUnread, ev,
			"the cloud's action log is read before anything is done: a migration Vigil did not watch may have moved its copy")
	}
	switch s.Status {
	case model.StatusError:
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerError, ev)
	case model.StatusShutoff, model.StatusPaused, model.StatusSuspended:
		if s.Intent == model.IntentOff {
			return serverVerdict(s.ID, model.ServerHealthy, false, RuleStoppedByOwner, ev, "its owner stopped it")
		}
		v := serverVerdict(s.ID, model.ServerFailed, true, RuleServerStopped, ev,
			"its owner did not ask for it to stop")
		// The host's report, if newer, tells what stopped it (a panic is not a crash).
		if f, ok := d.domainFactOf(s); ok {
			if dv, ok := domainVerdict(s, f); ok && dv.Failed {
				v.Fault = dv.Fault
				v.Evidence = append(v.Evidence, dv.Evidence[1:]...)
			}
		}
		return v
	default:
		return serverVerdict(s.ID, model.ServerRecovering, false, RuleServerBusy, ev)
	}
}

// trackMove remembers a server seen migrating or resizing until it is seen running
// (or stopped by its owner) again.
func (d *Detector) trackMove(s model.Server) {
	t := s.TaskState
	switch {
	case s.Status == model.StatusMigrating || s.Status == model.StatusResize || s.Status == model.StatusVerify ||
		t == "migrating" || strings.HasPrefix(t, "resize_"):
		d.moving[s.ID] = fmt.Sprintf("last seen %s (task %q) on host %s", s.Status, t, s.Host)
	case s.Status == model.StatusActive && t == "", s.Status == model.StatusShutoff && s.Intent == model.IntentOff:
		delete(d.moving, s.ID)
		if s.Status == model.StatusActive {
			d.idleAt[s.ID] = s.Updated
		}
	}
}

// stale reports whether a partial observation of a server (a notification, an
// incremental listing) is older than what is already known of it, by the cloud's
// own timestamps (updated_at): never by Vigil's clock.
func stale(known, s model.Server) bool {
	return !s.Updated.IsZero() && !known.Updated.IsZero() && s.Updated.Before(known.Updated)
}

// merge completes a partial observation of a server (a notification) with what was
// known: a field it does not carry keeps its value. An unknown power intent in
// particular must not turn a server its owner stopped into a failed one.
func merge(old, s model.Server) model.Server {
	if s.Intent == model.IntentUnknown {
		s.Intent = old.Intent
	}
	if s.Host == "" {
		s.Host = old.Host
	}
	if s.Name == "" {
		s.Name = old.Name
	}
	if s.Image == "" {
		s.Image = old.Image
	}
	if s.Updated.IsZero() {
		s.Updated = old.Updated
	}
	if s.Metadata == "" { // a notification does not carry it; a listing does
		s.Metadata = old.Metadata
	}
	return s
}
