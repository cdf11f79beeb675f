package vigil

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/model"
)

// The fields of one policy in the policies section.
var policyFields = []string{"name", "ladder", "step_timeout", "host_down_grace", "deadline", "max_attempts",
	"service_fence_only", "evacuate_on_host_failure", "fence_proof", "fabric_fence", "priority", "reserved_hosts",
	"ladders", "faults", "guest_agent", "apps", "dry_run"}

// The fields of one fault in a policy's faults section.
var faultFields = []string{"ladder", "max_attempts", "deadline"}

// allFaults are the faults a policy may give a ladder and limits of its own.
func allFaults() []string {
	return append(slices.Clone(model.Faults), model.FaultHostDead, model.FaultHostIsolated)
}

// policies reads the policies section: a list of policies, each named once.
// A policy named "default" replaces the built-in one.
func (c *checker) policies(sec entry, cfg *Config) {
	named := map[string]int{} // name -> line of its first definition in the file
	for i, n := range c.list(sec.V, sec.Path, "policies (each a mapping with a name)") {
		path := index(sec.Path, i)
		p, nameNode, ok := c.policy(n, path)
		if nameNode != nil && p.Name != "" {
			if line, dup := named[p.Name]; dup {
				c.bad(nameNode, path+".name", "policy %q is defined twice (first at line %d): give each policy one definition", p.Name, line)
				continue
			}
			named[p.Name] = nameNode.Line
		}
		if ok {
			cfg.Policies[p.Name] = p
		}
	}
}

// policyReader holds what is known of one policy while its fields are read: the
// fields given (for the lines of contradictions) and those found wrong (a
// contradiction is checked only between fields that are right on their own).
type policyReader struct {
	c      *checker
	path   string
	given  map[string]*yaml.Node // field path (relative: deadline, faults.hung.deadline) -> its value
	wrong  map[string]bool
	short  map[string]*yaml.Node // fault -> ladders.<fault> value (the short form)
	long   map[string]*yaml.Node // fault -> faults.<fault>.ladder value
	policy model.Policy
}

// policy reads one policy; ok when it has no mistake.
func (c *checker) policy(n *yaml.Node, path string) (model.Policy, *yaml.Node, bool) {
	before := len(c.errs)
	r := &policyReader{c: c, path: path, given: map[string]*yaml.Node{}, wrong: map[string]bool{},
		short: map[string]*yaml.Node{}, long: map[string]*yaml.Node{}, policy: model.DefaultPolicy()}
	p := &r.policy
	p.Ladders = maps.Clone(p.Ladders) // never the default's own map
	var nameNode *yaml.Node
	entries := c.mapping(n, path, "a policy", policyFields)
	for _, e := range entries {
		r.given[e.Key] = e.V
		ok := true
		switch e.Key {
		case "name":
			var name string
			if name, ok = c.str(e.V, e.Path, "the policy's name (clusters refer to it)"); ok && strings.TrimSpace(name) == "" {
				c.bad(e.V, e.Path, "empty: give the policy a name (clusters refer to it)")
				ok = false
			} else if err := model.CheckName(name); ok && err != nil {
				c.bad(e.V, e.Path, "policy name %v (clusters refer to it in URLs and tables)", err)
				ok = false
			}
			p.Name, nameNode = name, e.V
		case "ladder":
			p.Ladder, ok = r.ladder(e.V, e.Path, "")
		case "step_timeout":
			p.StepTimeout, ok = c.positive(e.V, e.Path, "60s")
		case "host_down_grace":
			p.HostDownGrace, ok = c.positive(e.V, e.Path, "10s (how long a host's compute service is down before the host is dead)")
		case "deadline":
			p.Deadline, ok = c.positive(e.V, e.Path, "10m")
		case "max_attempts":
			p.MaxAttempts, ok = c.between(e.V, e.Path, 1, 1000, "actions one incident may take: give 1 to 1000")
		case "service_fence_only":
			p.ServiceFenceOnly, ok = c.boolean(e.V, e.Path)
		case "evacuate_on_host_failure":
			p.EvacuateOnHostFailure, ok = c.boolean(e.V, e.Path)
		case "fabric_fence":
			p.FabricFence, ok = c.boolean(e.V, e.Path)
		case "dry_run":
			p.DryRun, ok = c.boolean(e.V, e.Path)
		case "fence_proof":
			if p.FenceProof, ok = c.str(e.V, e.Path, "one of "+strings.Join(model.FenceProofs, ", ")); ok && !slices.Contains(model.FenceProofs, p.FenceProof) {
				c.bad(e.V, e.Path, "unknown fence proof %q%s: allowed are %s", p.FenceProof, didYouMean(p.FenceProof, model.FenceProofs), strings.Join(model.FenceProofs, ", "))
				ok = false
			}
		case "priority":
			p.Priority, ok = c.between(e.V, e.Path, 1, 5, "give 1 to 5 (5 restarts first, 3 is the default)")
		case "reserved_hosts":
			p.ReservedHosts, ok = r.hosts(e.V, e.Path)
		case "ladders":
			ok = r.ladders(e)
		case "faults":
			ok = r.faults(e)
		case "guest_agent":
			var ga model.ProbeSpec
			if ga, ok = c.probe(e.V, e.Path, true); ok {
				p.GuestAgent = &ga
			}
		case "apps":
			p.Apps = []model.ProbeSpec{}
			for i, a := range c.list(e.V, e.Path, "application probes") {
				if spec, good := c.probe(a, index(e.Path, i), false); good {
					p.Apps = append(p.Apps, spec)
				}
			}
		}
		if !ok {
			r.wrong[e.Key] = true
		}
	}
	if isMapping(n) && r.given["name"] == nil && len(c.errs) == before {
		c.bad(n, join(path, "name"), "missing: every policy needs a name (clusters refer to it)")
	}
	if len(c.errs) == before {
		r.contradictions()
	}
	if len(c.errs) == before {
		// The model's own rules are the last word: the walk above says where a
		// mistake is, and this keeps a file that parses one the engine accepts.
		if err := p.Validate(); err != nil {
			c.bad(n, path, "%v", err)
		}
	}
	return *p, nameNode, len(c.errs) == before
}

// contradictions are fields right on their own and wrong together.
func (r *policyReader) contradictions() {
	c, p := r.c, &r.policy
	line := func(field string) *yaml.Node { return r.given[field] }
	stepLine := func() string {
		if n := line("step_timeout"); n != nil {
			return fmt.Sprintf(" (line %d)", n.Line)
		}
		return " (the default)"
	}
	// A deadline shorter than one step: the incident escalates before its first
	// step could be judged.
	if p.Deadline < p.StepTimeout {
		at, field := line("deadline"), "deadline"
		if at == nil {
			at, field = line("step_timeout"), "step_timeout"
		}
		c.bad(at, join(r.path, field), "deadline %s is shorter than step_timeout %s%s: not one step could be judged before the incident escalates: give a deadline of at least %s, or a shorter step_timeout",
			p.Deadline, p.StepTimeout, stepLine(), p.StepTimeout)
	}
	for _, f := range slices.Sorted(maps.Keys(p.FaultRules)) {
		if d := p.FaultRules[f].Deadline; d > 0 && d < p.StepTimeout {
			field := "faults." + f + ".deadline"
			c.bad(line(field), join(r.path, field), "deadline %s is shorter than step_timeout %s%s: not one step could be judged before the incident escalates: give a deadline of at least %s",
				d, p.StepTimeout, stepLine(), p.StepTimeout)
		}
	}
	if n := line("service_fence_only"); n != nil && p.ServiceFenceOnly && p.FenceProof != "" && p.FenceProof != model.FenceProofService {
		c.bad(n, join(r.path, "service_fence_only"), "true contradicts fence_proof %s (line %d): service_fence_only: true is fence_proof: service: give only fence_proof",
			p.FenceProof, line("fence_proof").Line)
	}
	dead := p.LadderFor(model.FaultHostDead)
	if n := line("evacuate_on_host_failure"); n != nil && !p.EvacuateOnHostFailure && slices.Contains(dead, model.ActEvacuate) &&
		(r.short[model.FaultHostDead] != nil || r.long[model.FaultHostDead] != nil) {
		c.bad(n, join(r.path, "evacuate_on_host_failure"), "false contradicts the host-dead ladder %v, which evacuates: give the host-dead ladder [notify-only] instead", dead)
	}
}

// ladder reads a list of actions for a fault ("": the policy's own ladder).
func (r *policyReader) ladder(n *yaml.Node, path, fault string) ([]model.Action, bool) {
	c := r.c
	allowed, host := model.HostFaultActions[fault]
	if !host {
		allowed = model.LadderActions
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	nd := c.deref(n, path)
	if nd == nil {
		return nil, false
	}
	if isNull(nd) || nd.Kind == yaml.SequenceNode && len(nd.Content) == 0 {
		c.bad(nd, path, "empty: list at least one action: allowed are %s", strings.Join(names, ", "))
		return nil, false
	}
	items := c.list(nd, path, "actions, such as [reboot, rebuild]")
	if nd.Kind != yaml.SequenceNode {
		return nil, false // reported by list
	}
	var ladder []model.Action
	ok := true
	for i, it := range items {
		ip := index(path, i)
		s, good := c.str(it, ip, "an action: one of "+strings.Join(names, ", "))
		if !good {
			ok = false
			continue
		}
		a := model.Action(s)
		switch {
		case host && !slices.Contains(allowed, a) && slices.Contains(model.LadderActions, a):
			c.bad(it, ip, "%s is not allowed for %s (%s): allowed are %s", a, fault, hostFaultWhy[fault], strings.Join(names, ", "))
			ok = false
			continue
		case !slices.Contains(allowed, a):
			c.bad(it, ip, "unknown action %q%s: allowed are %s", s, didYouMean(s, names), strings.Join(names, ", "))
			ok = false
			continue
		}
		if j := slices.Index(ladder, a); j >= 0 {
			c.bad(it, ip, "%s is listed twice (also rung %d): list each action once (a failed step is retried by itself, up to max_attempts)", a, j+1)
			ok = false
			continue
		}
		if len(ladder) > 0 && ladder[len(ladder)-1] == model.ActNotifyOnly {
			c.bad(it, ip, "%s comes after notify-only, which ends the ladder (Vigil stops there and tells an operator): put notify-only last", a)
			ok = false
			continue
		}
		ladder = append(ladder, a)
	}
	return ladder, ok
}

// hostFaultWhy says why a host fault's ladder allows only its actions.
var hostFaultWhy = map[string]string{
	model.FaultHostDead:     "a dead host's servers are evacuated after its fence, or left to an operator",
	model.FaultHostIsolated: "an isolated host is alive: its servers are migrated away or left alone, never evacuated or rebooted",
}

// fault reads a fault name used as a key; ok when Vigil knows it.
func (r *policyReader) fault(e entry) bool {
	if !slices.Contains(allFaults(), e.Key) {
		r.c.bad(e.KeyNode, e.Path, "unknown fault%s: known faults are %s", didYouMean(e.Key, allFaults()), strings.Join(allFaults(), ", "))
		return false
	}
	return true
}

// ladders reads the short form: ladders: {hung: [hard-reboot], ...}.
func (r *policyReader) ladders(sec entry) bool {
	ok := true
	for _, e := range r.c.mapping(sec.V, sec.Path, "a mapping of fault: [actions]", nil) {
		if !r.fault(e) {
			ok = false
			continue
		}
		r.short[e.Key] = e.V
		l, good := r.ladder(e.V, e.Path, e.Key)
		if good && r.sameFaultTwice(e.Key) {
			r.policy.Ladders[e.Key] = l
		}
		ok = ok && good
	}
	return ok
}

// faults reads the long form: faults: {crashed: {ladder: [...], max_attempts: 3, deadline: 5m}}.
func (r *policyReader) faults(sec entry) bool {
	c, p := r.c, &r.policy
	ok := true
	for _, fe := range c.mapping(sec.V, sec.Path, "a mapping of fault: {ladder, max_attempts, deadline}", nil) {
		if !r.fault(fe) {
			ok = false
			continue
		}
		var rules model.FaultRules
		has := false
		for _, e := range c.mapping(fe.V, fe.Path, "a mapping", faultFields) {
			rel := "faults." + fe.Key + "." + e.Key
			r.given[rel] = e.V
			good := true
			switch e.Key {
			case "ladder":
				r.long[fe.Key] = e.V
				var l []model.Action
				if l, good = r.ladder(e.V, e.Path, fe.Key); good && r.sameFaultTwice(fe.Key) {
					p.Ladders[fe.Key] = l
				}
			case "max_attempts":
				rules.MaxAttempts, good = c.between(e.V, e.Path, 1, 1000, "actions one incident of this fault may take: give 1 to 1000")
				has = has || good
			case "deadline":
				rules.Deadline, good = c.positive(e.V, e.Path, "10m")
				has = has || good
			}
			ok = ok && good
		}
		if has {
			if p.FaultRules == nil {
				p.FaultRules = map[string]model.FaultRules{}
			}
			p.FaultRules[fe.Key] = rules
		}
	}
	return ok
}

// sameFaultTwice reports a fault whose ladder is given in both forms (once, when
// the second is read); true when it is given once so far.
func (r *policyReader) sameFaultTwice(fault string) bool {
	s, l := r.short[fault], r.long[fault]
	if s == nil || l == nil {
		return true
	}
	later, earlier, lp, ep := l, s, "faults."+fault+".ladder", "ladders."+fault
	if s.Line > l.Line {
		later, earlier, lp, ep = s, l, ep, lp
	}
	r.c.bad(later, join(r.path, lp), "the ladder of %s is also given as %s (line %d): give it once (ladders: is the short form of faults.<fault>.ladder)",
		fault, ep, earlier.Line)
	return false
}

// hosts reads reserved_hosts: host names, each once.
func (r *policyReader) hosts(n *yaml.Node, path string) ([]string, bool) {
	c := r.c
	var hosts []string
	ok := true
	first := map[string]int{}
	for i, it := range c.list(n, path, "host names") {
		ip := index(path, i)
		h, good := c.str(it, ip, "a host name, as the compute service lists it")
		switch {
		case !good:
			ok = false
		case strings.TrimSpace(h) == "":
			c.bad(it, ip, "empty: give a host name, as the compute service lists it")
			ok = false
		case first[h] != 0:
			c.bad(it, ip, "host %q is listed twice (first at line %d): list each reserved host once", h, first[h])
			ok = false
		default:
			first[h] = it.Line
			hosts = append(hosts, h)
		}
	}
	return hosts, ok
}

var probeFields = []string{"name", "kind", "target", "command", "interval", "timeout", "failures"}

var probeKinds = []string{model.ProbeGuestAgent, model.ProbeTCP, model.ProbeHTTP, model.ProbeCommand}

// probe reads a guest-agent probe (guestAgent: its kind and name default to
// guest-agent) or an application probe.
func (c *checker) probe(n *yaml.Node, path string, guestAgent bool) (model.ProbeSpec, bool) {
	before := len(c.errs)
	var s model.ProbeSpec
	if guestAgent {
		s.Name, s.Kind = model.ProbeGuestAgent, model.ProbeGuestAgent
	}
	given := map[string]*yaml.Node{}
	entries := c.mapping(n, path, "a probe", probeFields)
	for _, e := range entries {
		given[e.Key] = e.V
		switch e.Key {
		case "name":
			s.Name, _ = c.str(e.V, e.Path, "the probe's name")
		case "kind":
			if k, ok := c.str(e.V, e.Path, "one of "+strings.Join(probeKinds, ", ")); ok {
				if !slices.Contains(probeKinds, k) {
					c.bad(e.V, e.Path, "unknown kind %q%s: allowed are %s", k, didYouMean(k, probeKinds), strings.Join(probeKinds, ", "))
				}
				s.Kind = k
			}
		case "target":
			s.Target, _ = c.str(e.V, e.Path, "host:port (tcp) or a URL (http)")
		case "command":
			for i, it := range c.list(e.V, e.Path, "words of the command, e.g. [pidof, nginx]") {
				if w, ok := c.str(it, index(e.Path, i), "a word of the command"); ok {
					s.Command = append(s.Command, w)
				}
			}
		case "interval":
			s.Interval, _ = c.positive(e.V, e.Path, "2s")
		case "timeout":
			s.Timeout, _ = c.positive(e.V, e.Path, "1s")
		case "failures":
			s.Failures, _ = c.between(e.V, e.Path, 1, 1000, "consecutive failed tries before the guest is judged: give 1 to 1000")
		}
	}
	if !isMapping(n) {
		return s, false
	}
	if len(c.errs) > before {
		return s, false // a field's mistake first (a typo'd field is not also missing)
	}
	missing := func(field, why string) {
		if given[field] == nil {
			c.bad(n, join(path, field), "missing: %s", why)
		}
	}
	if !guestAgent {
		missing("name", "every application probe needs a name")
		missing("kind", "give one of "+strings.Join(probeKinds, ", "))
	}
	missing("interval", "give how often to probe, such as 2s")
	missing("timeout", "give how long one try may take, such as 1s (at most the interval)")
	missing("failures", "give how many consecutive failed tries judge the guest, such as 3")
	if len(c.errs) > before {
		return s, false
	}
	switch {
	case s.Timeout > s.Interval:
		c.bad(given["timeout"], join(path, "timeout"), "%s is longer than the interval %s: a try must end before the next starts: give at most %s", s.Timeout, s.Interval, s.Interval)
	case (s.Kind == model.ProbeTCP || s.Kind == model.ProbeHTTP) && s.Target == "":
		c.bad(n, join(path, "target"), "missing: a %s probe needs one (host:port for tcp, a URL for http)", s.Kind)
	case s.Kind == model.ProbeCommand && len(s.Command) == 0:
		c.bad(n, join(path, "command"), "missing: a command probe needs one, such as [pidof, nginx]")
	default:
		if err := s.Validate(); err != nil {
			c.bad(n, path, "%v", err)
		}
	}
	return s, len(c.errs) == before
}
