package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Server verdicts from what the host itself sees: its agent's report of the
// server's domain (libvirt's state, its lifecycle events, guest and application
// probes) and external monitors' VM reports. Only the host Nova places the server
// on speaks for its health, only while its agent is heard, and only with a report
// newer than Nova's last change of the server (Nova's newer state wins: an owner's
// stop, a reboot under way).

// Rules of server verdicts from domains and probes.
const (
	RuleServerDomainCrashed  = "server-domain-crashed"
	RuleServerDomainPanicked = "server-domain-panicked"
	RuleServerDomainIOError  = "server-domain-io-error"
	RuleServerDomainWatchdog = "server-domain-watchdog"
	RuleServerGuestHung      = "server-guest-hung"
	RuleServerAppFailed      = "server-app-failed"
	RuleServerMonitorFailed  = "server-monitor-reported"
)

// domainFact is what the owner host's agent reports of a server, if it counts.
type domainFact struct {
	dom    *model.Domain // nil: not among the host's domains
	events []model.DomainEvent
	// panic is a panic event of the domain shortly before its current state (the
	// guest panicked, then libvirt destroyed it: on_crash=destroy), if any.
	panic *model.DomainEvent
	at    time.Time // arrival of the report
	host  string
}

func (d *Detector) domainFactOf(s model.Server) (domainFact, bool) {
	rv, ok := d.reports[s.Host]
	if !ok || !d.agentHeard[s.Host] || rv.at.Before(d.changedAt[s.ID]) {
		return domainFact{}, false
	}
	f := domainFact{at: rv.at, host: s.Host}
	for i := range rv.rep.Domains {
		if rv.rep.Domains[i].UUID == s.ID {
			f.dom = &rv.rep.Domains[i]
		}
	}
	for _, ev := range rv.events {
		if ev.UUID != s.ID {
			continue
		}
		// An event older than the domain's current state is history (a crash that a
		// reboot already answered) ...
		if f.dom == nil || f.dom.Since.IsZero() || !ev.At.Before(f.dom.Since) {
			f.events = append(f.events, ev)
		}
		// ... except the panic that led to it: a panicked guest is destroyed by
		// libvirt some 200 ms later, and its state then says only "crashed".
		if (ev.Event == "crashed" || ev.Detail == model.ReasonPanicked) && f.dom != nil && !f.dom.Since.IsZero() &&
			!ev.At.After(f.dom.Since) && f.dom.Since.Sub(ev.At) <= panicLeadsTo {
			p := ev
			f.panic = &p
		}
	}
	if f.dom == nil && len(f.events) == 0 {
		return domainFact{}, false
	}
	return f, true
}

// panicLeadsTo: how long before a domain's shut-off a panic event of it may have come
// to be its cause (libvirt destroys a panicked guest some 200 ms after the event).
const panicLeadsTo = 10 * time.Second

// domainVerdict judges a server Nova shows ACTIVE and idle by its host's report.
// ok is false when the report says nothing either way.
func domainVerdict(s model.Server, f domainFact) (model.Verdict, bool) {
	where := fmt.Sprintf("host %s's agent (report at %s)", f.host, f.at.Format("15:04:05.000"))
	fail := func(fault, rule, what string) (model.Verdict, bool) {
		v := serverVerdict(s.ID, model.ServerFailed, true, rule, fmt.Sprintf("status %s on host %s by Nova", s.Status, s.Host), what+", by "+where)
		v.Fault = fault
		return v, true
	}
	dom := f.dom
	if dom != nil {
		state := fmt.Sprintf("domain %s %s", dom.State, cmpOr(dom.Reason, "(no reason)"))
		switch {
		case dom.State == model.DomainShutoff && (dom.Reason == model.ReasonCrashed || dom.Reason == model.ReasonFailed) && f.panic != nil:
			return fail(model.FaultPanicked, RuleServerDomainPanicked, fmt.Sprintf("%s after its guest panicked (event %s/%s at %s)",
				state, f.panic.Event, f.panic.Detail, f.panic.At.Format("15:04:05.000")))
		case dom.State == model.DomainShutoff && (dom.Reason == model.ReasonCrashed || dom.Reason == model.ReasonFailed):
			return fail(model.FaultCrashed, RuleServerDomainCrashed, state)
		case dom.State == model.DomainCrashed || dom.Reason == model.ReasonPanicked:
			return fail(model.FaultPanicked, RuleServerDomainPanicked, state)
		case dom.State == model.DomainPaused && dom.Reason == model.ReasonIOError:
			return fail(model.FaultIOError, RuleServerDomainIOError, state)
		case dom.Reason == model.ReasonWatchdog:
			return fail(model.FaultWatchdog, RuleServerDomainWatchdog, state)
		}
	}
	for _, ev := range slices.Backward(f.events) {
		what := fmt.Sprintf("event %s/%s at %s", ev.Event, ev.Detail, ev.At.Format("15:04:05.000"))
		switch {
		case ev.Event == "stopped" && (ev.Detail == "failed" || ev.Detail == "crashed"):
			return fail(model.FaultCrashed, RuleServerDomainCrashed, what)
		case ev.Event == "crashed" || ev.Detail == "panicked":
			return fail(model.FaultPanicked, RuleServerDomainPanicked, what)
		case ev.Detail == "io-error":
			return fail(model.FaultIOError, RuleServerDomainIOError, what)
		case ev.Detail == "watchdog":
			return fail(model.FaultWatchdog, RuleServerDomainWatchdog, what)
		}
	}
	if dom == nil || dom.State != model.DomainRunning {
		return model.Verdict{}, false // Nova's view stands (its sync will follow)
	}
	if ga := dom.GuestAgent; ga != nil && !ga.OK && ga.Failures >= max(ga.Threshold, 1) {
		return fail(model.FaultHung, RuleServerGuestHung, fmt.Sprintf("domain running, its guest agent failed %d probes in a row (threshold %d, last error %q)", ga.Failures, ga.Threshold, ga.Error))
	}
	for _, app := range dom.Apps {
		if !app.OK && app.Failures >= max(app.Threshold, 1) {
			return fail(model.FaultAppFailed, RuleServerAppFailed, fmt.Sprintf("domain running, guest agent %s, application probe %s failed %d times in a row (threshold %d, last error %q)",
				guestAgentState(dom.GuestAgent), app.Name, app.Failures, app.Threshold, app.Error))
		}
	}
	var probes []string
	if dom.GuestAgent != nil {
		probes = append(probes, "guest agent "+guestAgentState(dom.GuestAgent))
	}
	for _, app := range dom.Apps {
		probes = append(probes, fmt.Sprintf("%s ok=%v (%d failures)", app.Name, app.OK, app.Failures))
	}
	ev := fmt.Sprintf("domain running, by %s", where)
	if len(probes) > 0 {
		ev += "; probes: " + strings.Join(probes, ", ")
	}
	return serverVerdict(s.ID, model.ServerHealthy, false, RuleServerActive, fmt.Sprintf("status %s on host %s", s.Status, s.Host), ev), true
}

func guestAgentState(p *model.Probe) string {
	switch {
	case p == nil:
		return "not probed"
	case p.OK:
		return "answers"
	}
	return fmt.Sprintf("failing (%d)", p.Failures)
}

// monitorVerdict judges a server by a masakari-instancemonitor VM report newer
// than Nova's last change of it.
func (d *Detector) monitorVerdict(s model.Server) (model.Verdict, time.Time, bool) {
	r, ok := d.vmReports[s.ID]
	if !ok || r.At.Before(d.changedAt[s.ID]) {
		return model.Verdict{}, time.Time{}, false
	}
	ev := strings.ToUpper(r.Payload["event"])
	if ev == "" {
		ev = strings.ToUpper(r.Event)
	}
	de := strings.ToUpper(r.Payload["vir_domain_event"])
	fault := ""
	switch {
	case ev == "QEMU_GUEST_AGENT_ERROR":
		fault = model.FaultHung
	case strings.HasPrefix(de, "STOPPED_FAILED"), strings.HasPrefix(de, "STOPPED_CRASHED"):
		fault = model.FaultCrashed
	case strings.HasPrefix(de, "CRASHED"):
		fault = model.FaultPanicked
	case strings.Contains(de, "IO_ERROR"):
		fault = model.FaultIOError
	case strings.Contains(de, "WATCHDOG"):
		fault = model.FaultWatchdog
	default:
		return model.Verdict{}, time.Time{}, false
	}
	v := serverVerdict(s.ID, model.ServerFailed, true, RuleServerMonitorFailed, fmt.Sprintf("status %s on host %s by Nova", s.Status, s.Host),
		fmt.Sprintf("monitor: VM notification %s from host %s: event %s, vir_domain_event %q (at %s)", r.ID, r.Host, cmpOr(ev, r.Event), de, r.At.Format("15:04:05.000")))
	v.Fault = fault
	return v, r.At, true
}

// signalVerdict judges a server Nova shows ACTIVE and idle by the newest of its
// host's report and a monitor's report; ok false when neither says anything.
func (d *Detector) signalVerdict(s model.Server) (model.Verdict, bool) {
	f, hasDom := d.domainFactOf(s)
	mv, mAt, hasMon := d.monitorVerdict(s)
	if hasDom && (!hasMon || !f.at.Before(mAt)) {
		if v, ok := domainVerdict(s, f); ok {
			return v, true
		}
	}
	if hasMon {
		return mv, true
	}
	return model.Verdict{}, false
}

// copiesElsewhere is evidence of a server's domain running on hosts other than
// the one Nova places it on, by their agents' reports.
func (d *Detector) copiesElsewhere(s model.Server) string {
	var others []string
	for _, h := range d.view.Running[s.ID] {
		if h != s.Host {
			others = append(others, h)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("a copy runs on %s by its agent's report (Nova places it on %s)", strings.Join(others, ", "), s.Host)
}
