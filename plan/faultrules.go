package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// notifyOnly is the reason of an incident whose ladder reaches notify-only: the
// policy's owner answers this fault themselves.
func notifyOnly(policy, fault, rung string) string {
	return fmt.Sprintf("notify-only: policy %s says fault %s is answered by an operator: Vigil takes no action (%s)", policy, fault, rung)
}

// hostNotifyOnly: a host whose protected servers fall under a policy whose
// host-dead ladder is notify-only is left to an operator before any fence (the
// strictest policy wins, as in hostPolicy: one host incident answers for all its
// servers, and fencing it for the others would take that policy's servers down too).
func (p *planner) hostNotifyOnly(host string, servers []string) (string, bool) {
	for _, name := range p.serverPolicies(servers) {
		pol := p.policy(name)
		if l := pol.LadderFor(model.FaultHostDead); len(l) > 0 && l[0] == model.ActNotifyOnly {
			return notifyOnly(pol.Name, model.FaultHostDead, fmt.Sprintf(
				"host %s: no fence, no evacuation of %s", host, strings.Join(servers, ", "))), true
		}
	}
	return "", false
}

// serverPolicies are the names of the policies of the given servers, sorted, once each.
func (p *planner) serverPolicies(servers []string) []string {
	set := map[string]bool{}
	for _, id := range servers {
		set[p.clusterPolicy(p.member[id])] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// mergeHostDead returns first's fault rules with host-dead's attempts and deadline
// the strictest of all the policies (a copy: the policies' own maps are shared).
func mergeHostDead(first model.Policy, others []string, policy func(string) model.Policy) map[string]model.FaultRules {
	r := model.FaultRules{MaxAttempts: first.AttemptsFor(model.FaultHostDead), Deadline: first.DeadlineFor(model.FaultHostDead)}
	for _, n := range others {
		pol := policy(n)
		r.MaxAttempts = min(r.MaxAttempts, pol.AttemptsFor(model.FaultHostDead))
		r.Deadline = min(r.Deadline, pol.DeadlineFor(model.FaultHostDead))
	}
	rules := maps.Clone(first.FaultRules)
	if rules == nil {
		rules = map[string]model.FaultRules{}
	}
	rules[model.FaultHostDead] = r
	return rules
}

// forFault names the fault whose own limits were used, if it has some.
func forFault(pol model.Policy, fault string) string {
	if _, own := pol.FaultRules[fault]; own {
		return " for " + fault
	}
	return ""
}
