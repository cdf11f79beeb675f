// Package explain builds the chain behind an incident from what Vigil journaled:
// observation -> verdict (its signals, values and rule) -> policy rule -> each
// step with its outcome and times. It is pure: the caller reads the incident, the
// journal's events and the current verdict, and gets a Chain to render as text
// (`vigil explain`) or JSON (the API, the dashboard).
package explain

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Chain is one explanation. Incident is nil for a subject with no incident yet.
type Chain struct {
	Subject  string    `json:"subject"`
	Incident *Incident `json:"incident,omitempty"`
	Verdict  *Verdict  `json:"verdict,omitempty"`
	Policy   *Policy   `json:"policy,omitempty"`
	Steps    []Step    `json:"steps"`
	// Waits: why the recovery was held, each time it was (brake, limits, dry run).
	Waits   []string        `json:"waits,omitempty"`
	Outcome string          `json:"outcome,omitempty"`
	Current *model.Verdict  `json:"current_verdict,omitempty"`
	Journal []model.Event   `json:"journal"`
	Others  []IncidentBrief `json:"other_incidents,omitempty"`
}

// Incident is the incident explained.
type Incident struct {
	ID      int64               `json:"id"`
	State   model.IncidentState `json:"state"`
	Reason  string              `json:"reason,omitempty"`
	Cluster string              `json:"cluster,omitempty"`
	Opened  time.Time           `json:"opened"`
	Closed  time.Time           `json:"closed,omitzero"`
	DryRun  bool                `json:"dry_run,omitempty"`
}

// IncidentBrief names an earlier incident of the same subject.
type IncidentBrief struct {
	ID     int64               `json:"id"`
	State  model.IncidentState `json:"state"`
	Rule   string              `json:"rule"`
	Opened time.Time           `json:"opened"`
}

// Verdict is what was observed and concluded: the signals (evidence, with their
// values) and the detection rule that fired.
type Verdict struct {
	Rule     string    `json:"rule"`
	Signals  []string  `json:"signals"`
	Observed string    `json:"observed,omitempty"` // the journal's verdict line, if any
	At       time.Time `json:"at"`
	Sentence string    `json:"sentence"`
}

// Policy is the policy that answered, and the rule of the first decision.
type Policy struct {
	Name     string `json:"name"`
	Fault    string `json:"fault,omitempty"`
	Sentence string `json:"sentence"`
}

// Step is one step with its outcome and times, in a sentence.
type Step struct {
	Seq      int             `json:"seq"`
	Action   model.Action    `json:"action"`
	On       string          `json:"on"`
	State    model.StepState `json:"state"`
	Rule     string          `json:"rule"`
	Error    string          `json:"error,omitempty"`
	Planned  time.Time       `json:"planned"`
	Started  time.Time       `json:"started,omitzero"`
	Finished time.Time       `json:"finished,omitzero"`
	Took     string          `json:"took,omitempty"`
	Sentence string          `json:"sentence"`
}

// Build explains one incident from its journal: evs may hold every event (those of
// other incidents and subjects are left out).
func Build(in model.Incident, evs []model.Event) Chain {
	subj := in.Subject.String()
	c := Chain{Subject: subj, Steps: []Step{}, Journal: []model.Event{}}
	c.Incident = &Incident{ID: in.ID, State: in.State, Reason: in.Reason, Cluster: in.Cluster, Opened: in.Opened, Closed: in.Closed}
	v := &Verdict{Rule: in.Rule, Signals: slices.Clone(in.Evidence), At: in.Opened}
	for _, e := range evs {
		if e.Incident == in.ID && in.ID != 0 {
			c.Journal = append(c.Journal, e)
			if _, why, ok := strings.Cut(e.Message, " waiting: "); ok && e.Kind == "incident" {
				c.Waits = append(c.Waits, fmt.Sprintf("At %s it waited: %s", stamp(e.At), why))
			}
			continue
		}
		if e.Kind == "verdict" && e.Subject == subj && !e.At.After(in.Opened) {
			v.Observed, v.At = e.Message, e.At // the latest verdict line up to the opening
		}
	}
	v.Sentence = verdictSentence(in, v)
	c.Verdict = v
	c.Policy = &Policy{Name: in.Policy, Fault: in.Fault, Sentence: policySentence(in)}
	for _, st := range in.Steps {
		s := step(st)
		if st.State == model.StepWould {
			c.Incident.DryRun = true
		}
		c.Steps = append(c.Steps, s)
	}
	c.Outcome = outcome(in)
	return c
}

// ForSubject explains a server or host: its latest incident (incs may hold any;
// the subject's are picked), its earlier ones named, and its current verdict
// (nil: not known).
func ForSubject(subj model.Subject, incs []model.Incident, evs []model.Event, current *model.Verdict) Chain {
	var mine []model.Incident
	for _, in := range incs {
		if in.Subject == subj {
			mine = append(mine, in)
		}
	}
	slices.SortFunc(mine, func(a, b model.Incident) int {
		return cmp.Or(a.Opened.Compare(b.Opened), cmp.Compare(a.ID, b.ID))
	})
	c := Chain{Subject: subj.String(), Steps: []Step{}, Journal: []model.Event{}}
	if n := len(mine); n > 0 {
		c = Build(mine[n-1], evs)
		for _, in := range mine[:n-1] {
			c.Others = append(c.Others, IncidentBrief{ID: in.ID, State: in.State, Rule: in.Rule, Opened: in.Opened})
		}
	} else {
		for _, e := range evs {
			if e.Subject == c.Subject {
				c.Journal = append(c.Journal, e)
			}
		}
		c.Outcome = "no incident: Vigil has not found " + subj.String() + " failed"
	}
	c.Current = current
	return c
}

func verdictSentence(in model.Incident, v *Verdict) string {
	what := "failed"
	if in.Subject.Kind == model.KindHost {
		what = "down"
	}
	s := fmt.Sprintf("Vigil found %s %s %s by rule %s", in.Subject.Kind, in.Subject.ID, what, cmp.Or(in.Rule, "(none recorded)"))
	if len(v.Signals) > 0 {
		s += ", on these signals: " + strings.Join(v.Signals, "; ")
	}
	return s + "."
}

func policySentence(in model.Incident) string {
	s := fmt.Sprintf("Policy %s answered it", cmp.Or(in.Policy, "default"))
	if in.Cluster != "" {
		s += " (cluster " + in.Cluster + ")"
	}
	if in.Fault != "" {
		s += ", with its ladder for fault " + in.Fault
	}
	if len(in.Steps) > 0 {
		s += "; its first decision: " + cmp.Or(in.Steps[0].Rule, "(no rule recorded)")
	}
	return s + "."
}

// on names what a step acts on.
func on(st model.Step) string {
	switch {
	case st.Server != "" && st.Target != "":
		return fmt.Sprintf("%s from %s to %s", st.Server, st.Host, st.Target)
	case st.Server != "" && st.Host != "" && (st.Action == model.ActEvacuate || model.IsMove(st.Action)):
		return fmt.Sprintf("%s from %s", st.Server, st.Host)
	case st.Server != "":
		return st.Server
	}
	return st.Host
}

func step(st model.Step) Step {
	s := Step{Seq: st.Seq, Action: st.Action, On: on(st), State: st.State, Rule: st.Rule, Error: st.Error,
		Planned: st.Planned, Started: st.Started, Finished: st.Finished}
	act := string(st.Action)
	if st.Hard && st.Action == model.ActReboot {
		act = "reboot (hard)"
	}
	if !st.Started.IsZero() && !st.Finished.IsZero() && st.Finished.After(st.Started) {
		s.Took = st.Finished.Sub(st.Started).String()
	}
	took := ""
	if s.Took != "" {
		took = ", in " + s.Took
	}
	var out string
	switch st.State {
	case model.StepWould:
		out = fmt.Sprintf("Would have taken %s %s (dry run: nothing was done)", act, s.On)
	case model.StepSucceeded:
		out = fmt.Sprintf("Took %s %s: it succeeded%s", act, s.On, took)
	case model.StepFailed:
		how := "it failed"
		if st.Retryable {
			how += " (may be retried)"
		}
		out = fmt.Sprintf("Took %s %s: %s%s: %s", act, s.On, how, took, st.Error)
	case model.StepSkipped:
		out = fmt.Sprintf("Skipped %s %s", act, s.On)
		if st.Error != "" {
			out += ": " + st.Error
		}
	case model.StepIssued:
		out = fmt.Sprintf("Took %s %s: issued, its effect awaited until %s", act, s.On, stamp(st.Deadline))
	case model.StepIntent:
		out = fmt.Sprintf("About to take %s %s (intent journaled; outcome not known yet)", act, s.On)
	default:
		out = fmt.Sprintf("Planned %s %s", act, s.On)
	}
	s.Sentence = fmt.Sprintf("%s. Why: %s.", out, cmp.Or(st.Rule, "(no rule recorded)"))
	return s
}

func outcome(in model.Incident) string {
	switch in.State {
	case model.IncidentResolved:
		return fmt.Sprintf("Resolved at %s: %s.", stamp(in.Closed), in.Reason)
	case model.IncidentEscalated:
		return fmt.Sprintf("Escalated at %s: an operator must act: %s.", stamp(in.Closed), in.Reason)
	case model.IncidentSuperseded:
		return fmt.Sprintf("Superseded at %s: %s.", stamp(in.Closed), in.Reason)
	case model.IncidentWaiting:
		return "Waiting: " + in.Reason + "."
	}
	if in.Reason != "" {
		return "Open: " + in.Reason + "."
	}
	return "Open: recovery under way."
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

// Text writes the chain in plain sentences, one link per paragraph.
func (c Chain) Text(w io.Writer) error {
	var b strings.Builder
	if c.Incident == nil {
		fmt.Fprintf(&b, "%s\n", c.Subject)
	} else {
		in := c.Incident
		fmt.Fprintf(&b, "Incident %d on %s: %s", in.ID, c.Subject, in.State)
		if in.DryRun {
			b.WriteString(" (dry run)")
		}
		fmt.Fprintf(&b, ", opened %s\n", stamp(in.Opened))
	}
	if v := c.Verdict; v != nil {
		b.WriteString("\n1. Observation and verdict\n")
		if v.Observed != "" {
			fmt.Fprintf(&b, "   At %s Vigil observed: %s\n", stamp(v.At), v.Observed)
		}
		fmt.Fprintf(&b, "   %s\n", v.Sentence)
	}
	if p := c.Policy; p != nil {
		fmt.Fprintf(&b, "\n2. Policy\n   %s\n", p.Sentence)
	}
	if c.Incident != nil {
		b.WriteString("\n3. Steps\n")
		if len(c.Steps) == 0 {
			b.WriteString("   No step was taken.\n")
		}
		for _, s := range c.Steps {
			fmt.Fprintf(&b, "   %d. [%s] %s\n", s.Seq, stamp(cmp.Or(s.Started, s.Planned)), s.Sentence)
		}
		for _, w := range c.Waits {
			fmt.Fprintf(&b, "   %s\n", w)
		}
	}
	if c.Outcome != "" {
		fmt.Fprintf(&b, "\n4. Outcome\n   %s\n", c.Outcome)
	}
	if c.Current != nil {
		fmt.Fprintf(&b, "\nNow: %s %s by rule %s", c.Subject, health(*c.Current), cmp.Or(c.Current.Rule, "-"))
		if len(c.Current.Evidence) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(c.Current.Evidence, "; "))
		}
		b.WriteString(".\n")
	}
	for _, o := range c.Others {
		fmt.Fprintf(&b, "Earlier: incident %d (%s, rule %s), opened %s.\n", o.ID, o.State, o.Rule, stamp(o.Opened))
	}
	if len(c.Journal) > 0 {
		b.WriteString("\nJournal\n")
		for _, e := range c.Journal {
			fmt.Fprintf(&b, "   %s %-9s %s\n", stamp(e.At), e.Kind, e.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func health(v model.Verdict) string {
	return cmp.Or(v.Host, v.Server, "unknown")
}
