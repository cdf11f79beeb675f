package plan

import (
	"fmt"

	"github.com/vigil-ha/vigil/model"
)

// RuleDryRun names the hold of a dry-run incident: its first step is journaled as
// what Vigil would have done (model.StepWould) and nothing further is decided,
// since nothing was done.
const RuleDryRun = "dry-run"

// lastWould returns the incident's latest step journaled as "would have", if any.
func lastWould(steps []model.Step) *model.Step {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].State == model.StepWould {
			return &steps[i]
		}
	}
	return nil
}

// dryRunReason is the waiting reason of a dry-run incident: what would have been
// done, and why nothing more is.
func dryRunReason(st model.Step) string {
	return fmt.Sprintf("%s: would have: %s (rule: %s); the policy is dry-run, so nothing was done and the incident waits until its subject recovers by itself or an operator acts",
		RuleDryRun, WouldAction(st), st.Rule)
}

// WouldAction names a step's action and what it acts on, as in "fence host-3" or
// "evacuate s1 from host-3 to host-4".
func WouldAction(st model.Step) string {
	a := string(st.Action)
	if st.Action == model.ActReboot && st.Hard {
		a = "reboot (hard)"
	}
	switch {
	case st.Server != "" && st.Target != "":
		return fmt.Sprintf("%s %s from %s to %s", a, st.Server, st.Host, st.Target)
	case st.Server != "" && st.Host != "" && (st.Action == model.ActEvacuate || model.IsMove(st.Action)):
		return fmt.Sprintf("%s %s from %s", a, st.Server, st.Host)
	case st.Server != "":
		return a + " " + st.Server
	default:
		return a + " " + st.Host
	}
}

// dryRun reports whether an incident's steps are only journaled: its policy is
// dry-run, or (an operator's drain, whose policy "drain" is no policy of the file) the default
// policy is, as the top-level dry_run makes it.
func (p *planner) dryRun(inc *model.Incident) bool {
	if inc.Subject.Kind == model.KindDrain {
		return p.policy("default").DryRun
	}
	return p.policyOf(inc).DryRun
}
