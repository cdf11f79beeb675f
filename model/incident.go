package model

import "time"

// IncidentState is where an incident stands.
type IncidentState string

const (
	IncidentOpen       IncidentState = "open"       // failure confirmed, recovery under way
	IncidentWaiting    IncidentState = "waiting"    // recovery blocked (brake, limits), reason says why
	IncidentResolved   IncidentState = "resolved"   // the subject is healthy again
	IncidentEscalated  IncidentState = "escalated"  // Vigil gave up; an operator must act
	IncidentSuperseded IncidentState = "superseded" // another incident (its host's) took over
)

// Closed reports whether the incident is over.
func (s IncidentState) Closed() bool {
	return s == IncidentResolved || s == IncidentEscalated || s == IncidentSuperseded
}

// Incident is one server or host fault and the one recovery that answers it.
type Incident struct {
	ID      int64         `json:"id"`
	Subject Subject       `json:"subject"`
	Cluster string        `json:"cluster,omitempty"`
	Policy  string        `json:"policy"`
	State   IncidentState `json:"state"`
	Reason  string        `json:"reason,omitempty"`
	Rule    string        `json:"rule"`
	// Fault is a server incident's kind of failure (Fault*), from its verdict when
	// it opened: it picks the policy's ladder (Policy.LadderFor).
	Fault    string    `json:"fault,omitempty"`
	Evidence []string  `json:"evidence"`
	Opened   time.Time `json:"opened"`
	Updated  time.Time `json:"updated"`
	Closed   time.Time `json:"closed,omitzero"`
	// Epoch is the recovery's fencing token: a write carrying an older epoch fails.
	Epoch int64 `json:"epoch"`
	// Shard is the shard whose leader owns the recovery (model.DefaultShard unless
	// the cloud is split among replicas): the shard of the failed subject's host.
	Shard string `json:"shard,omitempty"`
	Steps []Step `json:"steps"`
	// Foreign: the steps up to this Seq were written by another replica, on its
	// clock, when this one took the incident over (never stored: it is this
	// replica's reading). See ForeignTime.
	Foreign int `json:"-"`
}

// ForeignTime is a step's time as this replica may compare it with its own
// clock: the time itself for a step it wrote; for one another replica wrote
// (Seq up to in.Foreign), as early as it may be here: now at the latest, then
// MaxClockSkew earlier. A check that a server runs healthy since a step (an
// evacuation confirmed, a fabric cut lifted) held for ever when the old leader's
// clock was ahead, or when this replica's healthy verdict, held as a standby, read
// as older than the step (three-replica seeds 37 and 236). Taken earlier, such a
// check accepts a healthy verdict up to the skew older than the step: a server
// healthy elsewhere then had moved already, which is what the check asks.
func (in *Incident) ForeignTime(st *Step, t, now time.Time) time.Time {
	if st.Seq > in.Foreign || t.IsZero() {
		return t
	}
	if t.After(now) {
		t = now
	}
	return t.Add(-MaxClockSkew)
}

// InFlight returns the first step not yet finished, if any.
func (in *Incident) InFlight() *Step {
	for i := range in.Steps {
		if !in.Steps[i].State.Done() {
			return &in.Steps[i]
		}
	}
	return nil
}

// Unsettled returns a step journaled as intent and not yet settled (its outcome
// unknown: Vigil stopped after the intent, or the answer was lost), if any.
func (in *Incident) Unsettled() *Step {
	for i := range in.Steps {
		if in.Steps[i].State == StepIntent {
			return &in.Steps[i]
		}
	}
	return nil
}

// StepState is where one step stands in its journal.
type StepState string

const (
	StepPlanned   StepState = "planned"   // decided, not yet journaled as intent
	StepIntent    StepState = "intent"    // journaled: about to be taken, or taken with its answer lost (outcome unknown)
	StepIssued    StepState = "issued"    // the driver accepted it; waiting for its effect
	StepSucceeded StepState = "succeeded" // its effect was observed
	StepFailed    StepState = "failed"    // the driver refused it or its effect never came
	StepSkipped   StepState = "skipped"   // no longer needed
	// StepWould: decided under a dry-run policy and journaled, never taken: Vigil
	// would have taken it (same rule, same reason). It counts as done for planning:
	// the incident then waits, saying what would have been done.
	StepWould StepState = "would"
)

// Done reports whether the step is finished.
func (s StepState) Done() bool {
	return s == StepSucceeded || s == StepFailed || s == StepSkipped || s == StepWould
}

// Step is one action of a recovery, journaled before and after it runs.
type Step struct {
	ID       int64  `json:"id"`
	Incident int64  `json:"incident"`
	Seq      int    `json:"seq"`
	Action   Action `json:"action"`
	Server   string `json:"server,omitempty"`
	Host     string `json:"host,omitempty"`   // the host acted on (fence, mark-down) or the source
	Target   string `json:"target,omitempty"` // evacuation target; empty lets the cloud place
	// Hard: a reboot rung taken as a hard reboot (the server's state refuses a soft one).
	Hard  bool      `json:"hard,omitempty"`
	State StepState `json:"state"`
	Rule  string    `json:"rule"`
	Error string    `json:"error,omitempty"`
	// Retryable: the step failed for a passing reason (cloud unreachable, 5xx) and
	// the same action may be tried again; otherwise the ladder moves on.
	Retryable bool      `json:"retryable,omitempty"`
	Planned   time.Time `json:"planned"`
	Started   time.Time `json:"started,omitzero"`
	Issued    time.Time `json:"issued,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Timeout is how long the step's effect may take once issued (Deadline = Issued + Timeout).
	Timeout time.Duration `json:"timeout"`
	Attempt int           `json:"attempt"`
	// Prior is how many actions of this step's kind the cloud had recorded on the
	// server (its instance-action log) just before the intent; -1 when not read.
	// The cloud's own log says whether the step was taken: no clock is compared.
	Prior int `json:"prior_actions"`
}

// Subject is what the step acts on: its server, or else its host.
func (s Step) Subject() Subject {
	if s.Server != "" {
		return Subject{Kind: KindServer, ID: s.Server}
	}
	return Subject{Kind: KindHost, ID: s.Host}
}

// InstanceAction is what the cloud recorded doing to a server (Nova's
// os-instance-actions): used to resume a step whose outcome was not journaled.
type InstanceAction struct {
	Action    string    `json:"action"`
	RequestID string    `json:"request_id,omitempty"`
	Start     time.Time `json:"start"`
}

// Event is one line of the journal shown by the timeline and `explain`.
type Event struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // verdict, incident, step, escalation, cloud, ...
	Subject  string    `json:"subject"`
	Incident int64     `json:"incident,omitempty"`
	Message  string    `json:"message"`
}
