package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A dry run (Config.DryRun) gives every policy dry_run: Vigil detects and decides
// as in the live run of the same seed, journals the first step of each incident as
// "would" (model.StepWould) and calls no mutating driver method. Its checks:
//   - no mutating call at all (a violation of invariant 7: the journal would say
//     "would have" of something done);
//   - invariant 6 is replaced: a failure is answered by its incident, which holds a
//     "would" step or says why it waits (brake, limits, no fence proof); an open
//     incident at the end is expected (nothing was recovered).
// Decisions lets a test compare a dry run's first decisions with the live run's.

// dryRun makes every policy (and each server's copy of its policy) dry-run.
func dryRun(pols map[string]model.Policy, of map[string]model.Policy) {
	for name, p := range pols {
		p.DryRun = true
		pols[name] = p
	}
	for id, p := range of {
		p.DryRun = true
		of[id] = p
	}
}

// mutated records a mutating call Vigil made through the driver.
func (d *driver) mutated(what, on string) {
	d.mutations = append(d.mutations, fmt.Sprintf("%s %s at %s", what, on, fmtDur(d.w.now.Sub(epoch0))))
}

// Decision is an incident's first decision: what failed, by which rule, under which
// policy, and the first step planned for it (action and what it acts on).
type Decision struct {
	Opened  time.Duration // since the start
	Subject string
	Rule    string
	Policy  string
	Step    string // "fence h003", "reboot vm0007", "" when no step was planned
}

func (d Decision) String() string {
	return fmt.Sprintf("%s %s rule=%s policy=%s first=%q", fmtDur(d.Opened), d.Subject, d.Rule, d.Policy, d.Step)
}

// decisions reads each incident's first decision from the journal, oldest first.
func (w *world) decisions() []Decision {
	incs, err := w.db.Incidents(context.Background(), 1<<30)
	if err != nil {
		return nil
	}
	slices.SortFunc(incs, func(a, b model.Incident) int { return int(a.ID - b.ID) })
	var out []Decision
	for _, in := range incs {
		d := Decision{Opened: in.Opened.Sub(epoch0), Subject: in.Subject.String(), Rule: in.Rule, Policy: in.Policy}
		if len(in.Steps) > 0 {
			st := in.Steps[0]
			d.Step = strings.TrimSpace(fmt.Sprintf("%s %s %s", st.Action, st.Subject().ID, st.Target))
		}
		out = append(out, d)
	}
	return out
}

// checkDryRunEnd replaces invariant 6 in a dry run: nothing mutated, and every
// incident still open says what it would have done or why it waits.
func (w *world) checkDryRunEnd(incs []model.Incident) {
	if n := len(w.drv.mutations); n > 0 {
		w.violate(7, "dry run: Vigil made %d mutating calls (first: %s); a dry run journals what it would do and does nothing", n, w.drv.mutations[0])
	}
	for _, in := range incs {
		if in.State.Closed() {
			continue
		}
		if in.Reason == "" {
			w.violate(7, "dry run: incident %d on %s is %s without a reason", in.ID, in.Subject, in.State)
		}
		for _, st := range in.Steps {
			if st.State == model.StepWould && st.Rule == "" {
				w.violate(7, "dry run: incident %d's would-have step %d has no rule", in.ID, st.Seq)
			}
		}
	}
}
