package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// loadHostOps reads the journaled maintenance and host returns (New): a host an
// operator put in maintenance is still in it after a restart.
func (e *Engine) loadHostOps(ctx context.Context) error {
	m, err := e.cfg.Store.HostMaintenance(ctx)
	if err != nil {
		return err
	}
	r, err := e.cfg.Store.HostReturns(ctx)
	if err != nil {
		return err
	}
	e.maint, e.returned = m, r
	for _, h := range slices.Sorted(maps.Keys(m)) {
		e.det.SetMaintenanceWhy(h, maintenanceWhy(m[h]))
	}
	return nil
}

func maintenanceWhy(m model.Maintenance) string {
	why := "an operator put the host in maintenance at " + m.Since.UTC().Format(time.RFC3339)
	if m.Reason != "" {
		why += ": " + m.Reason
	}
	return why
}

// knownHost fails with ErrNotFound (an API's 404) for a host Vigil has not seen in
// the cloud's listing, naming those it has.
func (e *Engine) knownHost(host string) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	hosts := e.det.View().Hosts
	if _, ok := hosts[host]; ok {
		return nil
	}
	known := slices.Sorted(maps.Keys(hosts))
	if len(known) > 8 {
		known = append(known[:8], "...")
	}
	return fmt.Errorf("host %q is not a compute host of the cloud's last listing (known: %s): %w", host, strings.Join(known, ", "), store.ErrNotFound)
}

// MaintenanceResult is the answer to a maintenance change.
type MaintenanceResult struct {
	Host        string             `json:"host"`
	Maintenance bool               `json:"maintenance"`
	Record      *model.Maintenance `json:"record,omitempty"`
	Message     string             `json:"message"`
}

// SetMaintenance puts a host in maintenance (on) or takes it out: no failure
// verdict, no fence, no evacuation, no placement on it while in; a host that
// fails in maintenance with protected servers on it gets an escalated incident
// saying they are not recovered. Journaled (store and events): it outlives
// restarts. Idempotent: setting what is already set changes nothing.
func (e *Engine) SetMaintenance(ctx context.Context, host string, on bool, reason string) (MaintenanceResult, error) {
	if err := e.knownHost(host); err != nil {
		return MaintenanceResult{}, err
	}
	e.run.Lock() // between two reconciles: the next one sees it
	defer e.run.Unlock()
	now := e.cfg.Now()
	e.mu.RLock()
	old, was := e.maint[host]
	h := e.det.View().Hosts[host]
	e.mu.RUnlock()
	res := MaintenanceResult{Host: host, Maintenance: on}
	switch {
	case on && was && old.Reason == reason:
		res.Record, res.Message = &old, fmt.Sprintf("host %s is already in maintenance since %s", host, old.Since.UTC().Format(time.RFC3339))
		return res, nil
	case !on && !was:
		res.Message = fmt.Sprintf("host %s was not in maintenance by an operator", host)
		if h.Disabled && !e.cfg.DisabledNotMaintenance {
			res.Maintenance = true
			res.Message += "; its compute service is disabled in Nova, which Vigil honours as maintenance: enable it (openstack compute service set --enable " + host + " nova-compute) to end that"
		}
		return res, nil
	}
	var msg string
	if on {
		m := model.Maintenance{Host: host, Reason: reason, Since: now}
		if was {
			m.Since = old.Since // a new reason, the same maintenance
		}
		if err := e.cfg.Store.SetHostMaintenance(ctx, m); err != nil {
			return res, err
		}
		e.mu.Lock()
		e.maint[host] = m
		e.det.SetMaintenanceWhy(host, maintenanceWhy(m))
		e.mu.Unlock()
		res.Record = &m
		msg = fmt.Sprintf("an operator put host %s in maintenance (%s): Vigil neither fences nor evacuates it, nor places servers on it, until it ends; an incident whose fence already held goes on", host, cmpOr(reason, "no reason given"))
	} else {
		if err := e.cfg.Store.ClearHostMaintenance(ctx, host); err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		e.mu.Lock()
		delete(e.maint, host)
		e.det.SetMaintenanceWhy(host, "")
		e.mu.Unlock()
		msg = fmt.Sprintf("an operator ended the maintenance of host %s (begun %s): Vigil judges and recovers it again", host, old.Since.UTC().Format(time.RFC3339))
		if h.Disabled && !e.cfg.DisabledNotMaintenance {
			res.Maintenance = true
			msg += "; its compute service is still disabled in Nova, which Vigil honours as maintenance"
		}
	}
	res.Message = msg
	return res, e.emit(ctx, model.Event{At: now, Kind: "maintenance", Subject: "host/" + host, Message: msg})
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ReturnHost undoes Vigil's own force-down of a host once its servers were moved
// and it is healthy again, in the order an operator must follow:
//
//	(a) no protected server still placed on it, no incident on it open;
//	(b) healthy: its BMC says power on (if it has one) and its compute reports
//	    (its service's updated_at advances, forced down or not);
//	(c) force its service up: Nova refuses while 'done' evacuation records remain,
//	    until the restarted compute cleaned them up: retried with backoff for
//	    ReturnWait, then the refusal is said;
//	(d) enable the service if Vigil disabled it (Vigil never does: it forces
//	    down; a disabled service is someone else's, and said);
//	(e) maintenance: Vigil's return never sets it (no protected server is on the
//	    host, so a failure meanwhile fences nothing); an operator's is left, said.
//
// Each step is journaled as an event; asking again repeats only what is not done.
// The answer says what was done and what is left.
func (e *Engine) ReturnHost(ctx context.Context, host string) (model.HostReturn, error) {
	if err := e.knownHost(host); err != nil {
		return model.HostReturn{}, err
	}
	e.returning.Lock()
	defer e.returning.Unlock()
	r := model.HostReturn{Host: host}
	start := e.cfg.Now()
	deadline := start.Add(e.returnWait())
	var journalErr error
	say := func(done bool, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if done {
			r.Done = append(r.Done, msg)
		} else {
			r.Left = append(r.Left, msg)
		}
		if err := e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "host-return", Subject: "host/" + host, Message: "host return of " + host + ": " + msg}); err != nil && journalErr == nil {
			journalErr = err
		}
	}
	finish := func() (model.HostReturn, error) {
		msg := fmt.Sprintf("host return of %s: returned after %s", host, e.cfg.Now().Sub(start).Round(time.Millisecond))
		if !r.Returned || len(r.Left) > 0 {
			msg = fmt.Sprintf("host return of %s: stopped after %s; left: %s", host, e.cfg.Now().Sub(start).Round(time.Millisecond), strings.Join(r.Left, "; "))
		}
		if err := e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "host-return", Subject: "host/" + host, Message: msg}); err != nil && journalErr == nil {
			journalErr = err
		}
		return r, journalErr
	}
	if err := e.refresh(ctx); err != nil {
		return r, err
	}
	if msg := e.cloudBlind(); msg != "" {
		say(false, "(a) %s: nothing is checked or changed without a fresh listing; ask again", msg)
		return finish()
	}
	// (a)
	if blockers := e.returnBlockers(host); len(blockers) > 0 {
		for _, b := range blockers {
			say(false, "(a) %s", b)
		}
		return finish()
	}
	say(true, "(a) no protected server is placed on it and no incident on it is open")
	// (b)
	for attempt := 1; ; attempt++ {
		ok, final, why := e.returnHealthy(ctx, host)
		if ok {
			say(true, "(b) %s", why)
			break
		}
		if final || !e.cfg.Now().Before(deadline) {
			say(false, "(b) %s (checked %d times over %s)", why, attempt, e.cfg.Now().Sub(start).Round(time.Millisecond))
			return finish()
		}
		if err := e.sleep(ctx, backoff(attempt)); err != nil {
			return r, err
		}
		if err := e.refresh(ctx); err != nil {
			return r, err
		}
	}
	// (c)
	forcedAt, byVigil, err := e.forcedDownByVigil(ctx, host)
	if err != nil {
		return r, err
	}
	e.mu.RLock()
	h := e.det.View().Hosts[host]
	if at, ok := e.returned[host]; ok && !forcedAt.After(at) {
		byVigil = false // Vigil's force-down was already undone; this one is someone else's
	}
	e.mu.RUnlock()
	switch {
	case !h.ForcedDown:
		say(true, "(c) its compute service is not forced down: nothing to undo")
		r.Returned = true
	case !byVigil:
		say(false, "(c) its compute service is forced down, but not by Vigil (an operator or another tool): left as it is; force it up yourself if it should take servers (openstack --os-compute-api-version 2.53 compute service set --up %s nova-compute)", host)
	default:
		ok, why, err := e.forceUp(ctx, host, deadline)
		if err != nil {
			return r, err
		}
		say(ok, "(c) %s", why)
		r.Returned = ok
	}
	// (d)
	if h.Disabled {
		tail := ""
		if !e.cfg.DisabledNotMaintenance {
			tail = "; meanwhile Vigil honours it as maintenance"
		}
		say(false, "(d) its compute service is disabled, not by Vigil (Vigil forces a service down, never disables it): enable it when it should take new servers (openstack compute service set --enable %s nova-compute)%s", host, tail)
	} else {
		say(true, "(d) its compute service is enabled (Vigil never disables one: nothing to undo)")
	}
	// (e)
	e.mu.RLock()
	m, inMaint := e.maint[host]
	e.mu.RUnlock()
	if inMaint {
		say(false, "(e) it is in maintenance (an operator's, since %s%s): Vigil does not watch it until `vigil ctl host maintenance off %s`",
			m.Since.UTC().Format(time.RFC3339), strings.TrimSuffix(": "+m.Reason, ": "), host)
	} else {
		say(true, "(e) it is not in maintenance (Vigil's return never sets one)")
	}
	if r.Returned {
		if err := e.refresh(ctx); err != nil {
			return r, err
		}
	}
	return finish()
}

// journalScan bounds how many recent incidents a host return reads to find Vigil's
// own force-down of a host (the engine keeps only each subject's last closed one,
// without its steps after a restart).
const journalScan = 5000

// forcedDownByVigil: when Vigil last forced the host's service down, by its journal
// (the incidents in memory, and the recent ones in the store).
func (e *Engine) forcedDownByVigil(ctx context.Context, host string) (time.Time, bool, error) {
	e.mu.RLock()
	at, ok := e.forcedByVigil()[host]
	e.mu.RUnlock()
	incs, err := e.cfg.Store.Incidents(ctx, journalScan)
	if err != nil {
		return at, ok, fmt.Errorf("host return of %s: read the journal for Vigil's force-down: %w", host, err)
	}
	out := map[string]time.Time{}
	for _, in := range incs {
		markedDown(in, out)
	}
	if t, found := out[host]; found && t.After(at) {
		at, ok = t, true
	}
	return at, ok, nil
}

func (e *Engine) returnWait() time.Duration {
	if e.cfg.ReturnWait > 0 {
		return e.cfg.ReturnWait
	}
	return time.Minute
}

// backoff between a host return's attempts: 1 s, 2 s, 4 s, then 5 s.
func backoff(attempt int) time.Duration {
	return min(time.Second<<min(attempt-1, 3), 5*time.Second)
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if e.cfg.Sleep != nil {
		return e.cfg.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refresh lists the cloud and reconciles once (Tick): a host return decides on
// facts of now, and recoveries go on meanwhile.
func (e *Engine) refresh(ctx context.Context) error {
	return e.Tick(ctx)
}

func (e *Engine) cloudBlind() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.det.View().CloudErr; err != "" {
		return "the cloud cannot be listed now (" + err + ")"
	}
	return ""
}

// returnBlockers: the protected servers still placed on the host (their move is
// not done) and the open incidents on it or on them, each a sentence.
func (e *Engine) returnBlockers(host string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []string
	on := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(e.det.View().Servers)) {
		if s := e.det.View().Servers[id]; s.Host == host && e.det.Protected(id) {
			on[id] = true
			out = append(out, fmt.Sprintf("protected server %s (%s) is still placed on it, %s: it must be moved (evacuated) first", id, s.Name, s.Status))
		}
	}
	for _, in := range e.open {
		if in.Subject == (model.Subject{Kind: model.KindHost, ID: host}) || in.Subject.Kind == model.KindServer && on[in.Subject.ID] {
			out = append(out, fmt.Sprintf("incident %d on %s is %s (%s): wait for it to end", in.ID, in.Subject, in.State, cmpOr(in.Reason, "in progress")))
		}
	}
	return out
}

// returnHealthy: the host's BMC says on (if it has one) and its compute reports.
// final: waiting will not help (its BMC says off: someone must power it on).
func (e *Engine) returnHealthy(ctx context.Context, host string) (ok, final bool, why string) {
	var bmc string
	if e.cfg.Fencer != nil && e.cfg.Fencer.CanFence(host) {
		p, err := e.cfg.Fencer.PowerStatus(ctx, host)
		switch {
		case err != nil:
			return false, false, fmt.Sprintf("its BMC does not answer (%v): Vigil cannot tell it is powered on", err)
		case p == model.PowerOff:
			return false, true, "its BMC says power off: power it on (its compute starts with it) and ask again"
		case p != model.PowerOn:
			return false, false, fmt.Sprintf("its BMC gives no power state (%q)", p)
		}
		bmc = "its BMC says power on; "
	}
	e.mu.RLock()
	v, _ := e.det.HealthBeneath(host)
	e.mu.RUnlock()
	ev := strings.Join(v.Evidence, "; ")
	if v.Host != string(model.HostUp) {
		return false, false, fmt.Sprintf("%sits compute does not report yet (%s, %s: %s): start nova-compute on it", bmc, cmpOr(v.Host, "no verdict"), v.Rule, ev)
	}
	return true, false, fmt.Sprintf("%sits compute reports (%s: %s)", bmc, v.Rule, ev)
}

// forceUp forces the host's service up, retrying while Nova refuses (a conflict:
// the restarted compute has not cleaned up its evacuation records yet) or does
// not answer, until deadline.
func (e *Engine) forceUp(ctx context.Context, host string, deadline time.Time) (bool, string, error) {
	start := e.cfg.Now()
	for attempt := 1; ; attempt++ {
		// An action like a step's: only under a valid lease of the host's shard (a
		// standby, or a leader whose lease lapsed while it waited, does not act).
		e.mu.RLock()
		shard := e.shardOfHost(host)
		e.mu.RUnlock()
		if err := e.guardShard(ctx, shard); err != nil {
			return false, fmt.Sprintf("not forced up: this replica may not act on host %s now: %v; ask the replica leading shard %s", host, err, shard), nil
		}
		err := e.cfg.Compute.ForceDown(ctx, host, false)
		if err == nil {
			now := e.cfg.Now()
			if err := e.cfg.Store.RecordHostReturn(ctx, host, now); err != nil {
				return false, "", err
			}
			e.mu.Lock()
			e.returned[host] = now
			e.mu.Unlock()
			return true, fmt.Sprintf("forced its compute service up (attempt %d, %s after the first)", attempt, now.Sub(start).Round(time.Millisecond)), nil
		}
		retry := errors.Is(err, cloud.ErrConflict) || errors.Is(err, cloud.ErrUnavailable)
		if !retry || cloud.IsTerminal(err) {
			return false, fmt.Sprintf("force-up failed: %v", err), nil
		}
		if !e.cfg.Now().Before(deadline) {
			return false, fmt.Sprintf("Nova still refuses to force it up after %d attempts over %s: %v; once the restarted compute has cleaned up (its log: \"Cleaning up allocations of the instance as it has been evacuated\"; restart it if it was started before the evacuations ended), ask again",
				attempt, e.cfg.Now().Sub(start).Round(time.Millisecond), err), nil
		}
		if err := e.sleep(ctx, backoff(attempt)); err != nil {
			return false, "", err
		}
	}
}
