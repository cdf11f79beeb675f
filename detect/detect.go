package detect

import (
	"fmt"
	"maps"
	"slices"
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
	RuleHostUp          = "host-service-up"
	RuleHostSuspect     = "host-service-down-within-grace"
	RuleHostDown        = "host-service-down-past-grace"
	RuleHostMaintenance = "host-maintenance"
)

// Config holds the detector's thresholds.
type Config struct {
	// HostDownGrace: a compute service down this long means the host is dead.
	HostDownGrace time.Duration
}

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
}

// Detector holds the state that verdicts need across observations.
type Detector struct {
	cfg       Config
	protected map[string]bool
	hostMaint map[string]bool
	view      View
	// dirty servers are re-judged at the next step; the others keep their verdict
	// (their observation and their host's verdict did not change).
	dirty map[string]bool
}

// New returns a detector with an empty view.
func New(cfg Config) *Detector {
	return &Detector{cfg: cfg, protected: map[string]bool{}, hostMaint: map[string]bool{}, dirty: map[string]bool{},
		view: View{Hosts: map[string]model.Host{}, Servers: map[string]model.Server{},
			Verdicts: map[model.Subject]model.Verdict{}}}
}

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
	if on {
		d.hostMaint[host] = true
	} else {
		delete(d.hostMaint, host)
	}
}

// View returns the current picture. The maps are shared: callers must not modify them.
func (d *Detector) View() *View { return &d.view }

// Step folds one observation into the view and returns the verdicts that changed.
func (d *Detector) Step(now time.Time, obs model.Observation) []model.Verdict {
	v := &d.view
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
		seen := make(map[string]bool, len(obs.Hosts))
		for _, h := range obs.Hosts {
			if old, ok := v.Hosts[h.Name]; ok && h.Power == model.PowerUnknown {
				h.Power = old.Power
			}
			v.Hosts[h.Name] = h
			seen[h.Name] = true
		}
		for name := range v.Hosts {
			if !seen[name] {
				delete(v.Hosts, name)
				delete(v.Verdicts, model.Subject{Kind: model.KindHost, ID: name})
			}
		}
	}
	for name, p := range obs.Power {
		if h, ok := v.Hosts[name]; ok {
			h.Power = p
			v.Hosts[name] = h
		}
	}
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
		if had && !obs.Full {
			s = merge(old, s)
		}
		if !had || old != s {
			v.Servers[s.ID] = s
			d.dirty[s.ID] = true
		}
	}
	for _, id := range obs.Deleted {
		delete(v.Servers, id)
		d.dirty[id] = true
	}
	return d.judge(now)
}

// judge recomputes verdicts for every host and every known or protected server.
func (d *Detector) judge(now time.Time) []model.Verdict {
	var changed []model.Verdict
	var hostChanged map[string]bool
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
	ids := slices.Sorted(maps.Keys(d.dirty))
	clear(d.dirty)
	for _, id := range ids {
		s, ok := d.view.Servers[id]
		var nv model.Verdict
		if !ok {
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

func (d *Detector) serverVerdict(s model.Server) model.Verdict {
	ev := fmt.Sprintf("status %s on host %s", s.Status, s.Host)
	if s.TaskState != "" {
		ev += ", task " + s.TaskState
	}
	if hv, ok := d.view.Verdicts[model.Subject{Kind: model.KindHost, ID: s.Host}]; ok && hv.Failed {
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerHostDown, ev,
			fmt.Sprintf("its host %s is %s (%s)", s.Host, hv.Host, hv.Rule))
	}
	switch s.Status {
	case model.StatusActive:
		if s.TaskState != "" {
			return serverVerdict(s.ID, model.ServerRecovering, false, RuleServerBusy, ev)
		}
		return serverVerdict(s.ID, model.ServerHealthy, false, RuleServerActive, ev)
	case model.StatusError:
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerError, ev)
	case model.StatusShutoff, model.StatusPaused, model.StatusSuspended:
		if s.Intent == model.IntentOff {
			return serverVerdict(s.ID, model.ServerHealthy, false, RuleStoppedByOwner, ev, "its owner stopped it")
		}
		return serverVerdict(s.ID, model.ServerFailed, true, RuleServerStopped, ev,
			"its owner did not ask for it to stop")
	default:
		return serverVerdict(s.ID, model.ServerRecovering, false, RuleServerBusy, ev)
	}
}

func (d *Detector) hostVerdict(now time.Time, h model.Host) model.Verdict {
	subj := model.Subject{Kind: model.KindHost, ID: h.Name}
	mk := func(health model.HostHealth, failed bool, rule string, ev ...string) model.Verdict {
		return model.Verdict{Subject: subj, Host: string(health), Failed: failed, Rule: rule, Evidence: ev}
	}
	if h.Maintenance || d.hostMaint[h.Name] {
		return mk(model.HostMaintenance, false, RuleHostMaintenance, "an operator put the host in maintenance")
	}
	if h.Service == model.ServiceUp {
		return mk(model.HostUp, false, RuleHostUp, "compute service up")
	}
	// Down: since when? A verdict already suspect or down keeps its start.
	since := now
	if old, ok := d.view.Verdicts[subj]; ok && (old.Rule == RuleHostSuspect || old.Rule == RuleHostDown) {
		since = old.Since
	}
	ev := []string{fmt.Sprintf("compute service down since %s", since.Format("15:04:05.000"))}
	if h.ForcedDown {
		ev = append(ev, "service forced down")
	}
	if h.Power == model.PowerOff {
		ev = append(ev, "BMC reports power off")
	}
	down := now.Sub(since)
	if down < d.cfg.HostDownGrace && !h.ForcedDown {
		v := mk(model.HostSuspect, false, RuleHostSuspect, append(ev,
			fmt.Sprintf("down for %s, less than the grace period %s", down.Round(time.Millisecond), d.cfg.HostDownGrace))...)
		v.Since = since
		return v
	}
	v := mk(model.HostDown, true, RuleHostDown, append(ev,
		fmt.Sprintf("down for %s, at least the grace period %s", down.Round(time.Millisecond), d.cfg.HostDownGrace))...)
	v.Since = since
	return v
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
	return s
}
