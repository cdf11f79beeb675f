package plan

import (
	"fmt"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// opensIncident: a verdict that opens an incident: a failed server or host, or a
// host that failed beneath its maintenance (rule host-maintenance-down) with
// protected servers on it, answered by an escalation that says Vigil does not
// recover them (every failure answered; nothing done on a host in maintenance).
func opensIncident(subj model.Subject, v model.Verdict) bool {
	switch subj.Kind {
	case model.KindServer:
		return v.Failed
	case model.KindHost:
		return v.Failed || v.Rule == model.RuleHostMaintenanceDown
	}
	return false // an agent's verdict is never an incident
}

// maintenanceDown is the answer to a host that failed beneath its maintenance
// before Vigil took any step on it (rule host-maintenance-down): escalate, naming
// its protected servers, what the operator can do, and the evidence. An operator
// put it in maintenance (or disabled its service): it is theirs, and Vigil neither
// fences nor evacuates it. Ending the maintenance lets Vigil recover it.
func (p *planner) maintenanceDown(inc *model.Incident, v model.Verdict) (string, bool) {
	if v.Rule != model.RuleHostMaintenanceDown {
		return "", false
	}
	name := inc.Subject.ID
	servers := p.protectedOn(name)
	what := "no protected server is placed on it"
	if len(servers) > 0 {
		what = fmt.Sprintf("its protected servers %s are not recovered", strings.Join(servers, ", "))
	}
	return fmt.Sprintf("host %s is in maintenance and looks failed beneath it: Vigil does not fence or evacuate a host in maintenance, so %s (rule %s); end its maintenance (`vigil ctl host maintenance off %s`, or enable its compute service if Nova's disabled flag put it there) to let Vigil recover them, or move them by hand; %s",
		name, what, model.RuleHostMaintenanceDown, name, strings.Join(v.Evidence, "; ")), true
}
