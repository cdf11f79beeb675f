package model

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Action is a recovery step kind.
type Action string

const (
	ActFence      Action = "fence"       // BMC power off, verified off
	ActMarkDown   Action = "mark-down"   // force the compute service down
	ActReboot     Action = "reboot"      // soft reboot
	ActHardReboot Action = "hard-reboot" // hard reboot
	ActRebuild    Action = "rebuild"     // rebuild in place: same ID, name, ports, volumes
	ActEvacuate   Action = "evacuate"    // restart on another host
	ActResetState Action = "reset-state" // clear a task left hanging on a fenced host
)

// ServerLadder are the actions a policy may list for a failed server, in ladder order.
var ServerLadder = []Action{ActReboot, ActHardReboot, ActRebuild, ActEvacuate}

// Policy says how a cluster's servers are recovered.
type Policy struct {
	Name string `json:"name" yaml:"name"`
	// Ladder for a failed server, tried in order; each rung gets StepTimeout to bring
	// the server back before the next is taken.
	Ladder      []Action      `json:"ladder" yaml:"ladder"`
	StepTimeout time.Duration `json:"step_timeout" yaml:"step_timeout"`
	// HostDownGrace: a host's compute service must be down this long before it is dead.
	HostDownGrace time.Duration `json:"host_down_grace" yaml:"host_down_grace"`
	// Deadline: a failure not recovered within it is escalated.
	Deadline time.Duration `json:"deadline" yaml:"deadline"`
	// MaxAttempts caps the actions one incident may take (retries included).
	MaxAttempts int `json:"max_attempts" yaml:"max_attempts"`
	// ServiceFenceOnly allows evacuating from a host with no BMC once its compute
	// service is forced down. Off by default: forced down is not proof the VMs are off.
	ServiceFenceOnly bool `json:"service_fence_only" yaml:"service_fence_only"`
	// Evacuate servers of a dead host at all (false: escalate instead).
	EvacuateOnHostFailure bool `json:"evacuate_on_host_failure" yaml:"evacuate_on_host_failure"`
	// Ladders overrides Ladder per fault (model.Fault*: e.g. hung -> hard-reboot;
	// app-failed -> reboot, rebuild). A fault not listed climbs Ladder.
	Ladders map[string][]Action `json:"ladders,omitempty" yaml:"ladders"`
	// GuestAgent is the QEMU guest agent ping probe of the policy's servers (a
	// guest that stops answering while its domain runs is hung); nil: not probed.
	GuestAgent *ProbeSpec `json:"guest_agent,omitempty" yaml:"guest_agent"`
	// Apps are application probes run against each server of the policy.
	Apps []ProbeSpec `json:"apps,omitempty" yaml:"apps"`
}

// ProbeSpec says how a host agent probes a guest or an application in it.
type ProbeSpec struct {
	Name string `json:"name" yaml:"name"`
	// Kind: "guest-agent" (QEMU guest agent ping), "tcp" (connect to Target,
	// host:port), "http" (GET Target, a 2xx/3xx status is healthy) or "command"
	// (run Command in the guest through its agent, exit status 0 is healthy).
	Kind     string        `json:"kind" yaml:"kind"`
	Target   string        `json:"target,omitempty" yaml:"target"`
	Command  []string      `json:"command,omitempty" yaml:"command"`
	Interval time.Duration `json:"interval" yaml:"interval"`
	Timeout  time.Duration `json:"timeout" yaml:"timeout"`
	// Failures: consecutive failed tries before the guest is judged.
	Failures int `json:"failures" yaml:"failures"`
}

// Probe kinds.
const (
	ProbeGuestAgent = "guest-agent"
	ProbeTCP        = "tcp"
	ProbeHTTP       = "http"
	ProbeCommand    = "command"
)

// LadderFor returns the ladder a failure of the given fault climbs.
func (p Policy) LadderFor(fault string) []Action {
	if l, ok := p.Ladders[fault]; ok && len(l) > 0 {
		return l
	}
	return p.Ladder
}

// Validate says what is wrong with a probe, naming the field.
func (s ProbeSpec) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("name: must not be empty")
	case s.Interval <= 0:
		return fmt.Errorf("probe %q: interval: must be positive, got %s", s.Name, s.Interval)
	case s.Timeout <= 0 || s.Timeout > s.Interval:
		return fmt.Errorf("probe %q: timeout: must be positive and at most the interval %s, got %s", s.Name, s.Interval, s.Timeout)
	case s.Failures <= 0:
		return fmt.Errorf("probe %q: failures: must be positive, got %d", s.Name, s.Failures)
	}
	switch s.Kind {
	case ProbeGuestAgent:
	case ProbeTCP, ProbeHTTP:
		if s.Target == "" {
			return fmt.Errorf("probe %q: target: a %s probe needs one", s.Name, s.Kind)
		}
	case ProbeCommand:
		if len(s.Command) == 0 {
			return fmt.Errorf("probe %q: command: a command probe needs one", s.Name)
		}
	default:
		return fmt.Errorf("probe %q: kind: unknown %q (want guest-agent, tcp, http or command)", s.Name, s.Kind)
	}
	return nil
}

// DefaultPolicy is the built-in "default" policy.
func DefaultPolicy() Policy {
	return Policy{
		Name:                  "default",
		Ladder:                slices.Clone(ServerLadder),
		StepTimeout:           60 * time.Second,
		HostDownGrace:         10 * time.Second,
		Deadline:              10 * time.Minute,
		MaxAttempts:           8,
		EvacuateOnHostFailure: true,
		// A hung or panicked guest is not helped by a soft reboot (it needs the
		// guest's cooperation); an application is first given a clean restart.
		Ladders: map[string][]Action{
			FaultHung:      {ActHardReboot, ActRebuild},
			FaultPanicked:  {ActHardReboot, ActRebuild},
			FaultAppFailed: {ActReboot, ActHardReboot, ActRebuild},
		},
	}
}

// Validate says what is wrong with a policy, naming the field.
func (p Policy) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("policy: name: must not be empty")
	}
	if len(p.Ladder) == 0 {
		return fmt.Errorf("policy %q: ladder: must list at least one action of %v", p.Name, ServerLadder)
	}
	for i, a := range p.Ladder {
		if !slices.Contains(ServerLadder, a) {
			return fmt.Errorf("policy %q: ladder[%d]: unknown action %q (want one of %v)", p.Name, i, a, ServerLadder)
		}
	}
	switch {
	case p.StepTimeout <= 0:
		return fmt.Errorf("policy %q: step_timeout: must be positive, got %s", p.Name, p.StepTimeout)
	case p.HostDownGrace < 0:
		return fmt.Errorf("policy %q: host_down_grace: must not be negative, got %s", p.Name, p.HostDownGrace)
	case p.Deadline <= 0:
		return fmt.Errorf("policy %q: deadline: must be positive, got %s", p.Name, p.Deadline)
	case p.MaxAttempts <= 0:
		return fmt.Errorf("policy %q: max_attempts: must be positive, got %d", p.Name, p.MaxAttempts)
	}
	for _, f := range slices.Sorted(maps.Keys(p.Ladders)) {
		if !slices.Contains(Faults, f) {
			return fmt.Errorf("policy %q: ladders: unknown fault %q (want one of %v)", p.Name, f, Faults)
		}
		for i, a := range p.Ladders[f] {
			if !slices.Contains(ServerLadder, a) {
				return fmt.Errorf("policy %q: ladders.%s[%d]: unknown action %q (want one of %v)", p.Name, f, i, a, ServerLadder)
			}
		}
	}
	if p.GuestAgent != nil {
		if err := p.GuestAgent.Validate(); err != nil {
			return fmt.Errorf("policy %q: guest_agent: %w", p.Name, err)
		}
	}
	for i, a := range p.Apps {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("policy %q: apps[%d]: %w", p.Name, i, err)
		}
	}
	return nil
}

// Cluster is a protected group of servers with a desired size and a policy.
type Cluster struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Desired int      `json:"desired"`
	Policy  string   `json:"policy"`
}

// ClusterStatus is a cluster with its health, as the API shows it.
type ClusterStatus struct {
	Cluster
	Health  ClusterHealth `json:"health"`
	Healthy int           `json:"healthy"`
	Reason  string        `json:"reason,omitempty"`
}

// Limits are the engine-wide caps that keep recoveries from storming.
type Limits struct {
	// MaxConcurrent recoveries (incidents with a step in flight) at once.
	MaxConcurrent int `json:"max_concurrent" yaml:"max_concurrent"`
	// BrakeFraction: when at least this share of a segment's hosts (and at least
	// BrakeMinHosts of them) look down at once, nothing is fenced or evacuated there.
	BrakeFraction float64 `json:"brake_fraction" yaml:"brake_fraction"`
	BrakeMinHosts int     `json:"brake_min_hosts" yaml:"brake_min_hosts"`
}

// DefaultLimits are conservative defaults for a small cloud.
func DefaultLimits() Limits {
	return Limits{MaxConcurrent: 20, BrakeFraction: 0.5, BrakeMinHosts: 3}
}

// Sabotage holds deliberate bugs. The simulation turns them on to prove that its
// invariant checkers catch what they are for; nothing else may set them.
type Sabotage struct {
	SkipFence          bool `json:"skip_fence,omitempty"`           // evacuate without fencing
	RepeatAfterRestart bool `json:"repeat_after_restart,omitempty"` // redo in-flight steps without asking the cloud
	IgnoreLimits       bool `json:"ignore_limits,omitempty"`        // no concurrency cap
	IgnoreBrake        bool `json:"ignore_brake,omitempty"`         // act in a braked segment
	FenceWrongHost     bool `json:"fence_wrong_host,omitempty"`     // power off a neighbour instead
	GiveUpSilently     bool `json:"give_up_silently,omitempty"`     // close incidents as resolved without checking
	DropEvidence       bool `json:"drop_evidence,omitempty"`        // plan steps without their rule
}
