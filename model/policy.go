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

	// Issue 15: moving servers off a live host, fabric fencing, and a rung that acts
	// on nothing.
	ActLiveMigrate Action = "live-migrate" // move a running server to another host (Nova's block_migration auto)
	ActColdMigrate Action = "cold-migrate" // stop, move and start a server on another host (Nova's migrate + confirm)
	ActNotifyOnly  Action = "notify-only"  // no action: the incident is escalated to an operator, saying so
	ActPortsDown   Action = "ports-down"   // fabric fence: the server's Neutron ports set admin_state_up=false
	ActPortsUp     Action = "ports-up"     // the fabric fence lifted: ports up again once the server runs elsewhere
	ActDetachVols  Action = "volumes-cut"  // fabric fence: the server's Cinder attachments to the old host deleted
)

// ServerLadder is the default ladder of a failed server, in order.
var ServerLadder = []Action{ActReboot, ActHardReboot, ActRebuild, ActEvacuate}

// LadderActions are the actions a policy may list in a failed server's ladder.
var LadderActions = []Action{ActReboot, ActHardReboot, ActRebuild, ActEvacuate, ActLiveMigrate, ActColdMigrate, ActNotifyOnly}

// Host faults: a policy's ladder for a dead host (evacuate, or notify-only) and
// for an isolated one (alive but cut off on a path: migrate away, or notify-only).
const (
	FaultHostDead     = "host-dead"
	FaultHostIsolated = "host-isolated"
)

// HostFaultActions are the actions each host fault's ladder may list.
var HostFaultActions = map[string][]Action{
	FaultHostDead:     {ActEvacuate, ActNotifyOnly},
	FaultHostIsolated: {ActLiveMigrate, ActColdMigrate, ActNotifyOnly},
}

// Fence proofs a policy accepts before its servers are evacuated from a host.
const (
	// FenceProofBMC: the host's BMC confirmed the power off (the default).
	FenceProofBMC = "bmc"
	// FenceProofBMCOrFabric: the BMC, or, when no BMC answers, the fabric fence:
	// every port of the server down in Neutron and its volumes cut in Cinder, so a
	// copy that still runs can neither talk nor write.
	FenceProofBMCOrFabric = "bmc-or-fabric"
	// FenceProofService: a forced-down compute service is enough (no BMC needed):
	// the old service_fence_only.
	FenceProofService = "service"
)

// FenceProofs lists the accepted values of Policy.FenceProof.
var FenceProofs = []string{FenceProofBMC, FenceProofBMCOrFabric, FenceProofService}

// FaultRules are one fault's own limits; zero values take the policy's.
type FaultRules struct {
	MaxAttempts int           `json:"max_attempts,omitempty" yaml:"max_attempts"`
	Deadline    time.Duration `json:"deadline,omitempty" yaml:"deadline"`
}

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

	// FaultRules are per-fault attempts and deadlines (model.Fault*, host-dead,
	// host-isolated); a fault not listed takes MaxAttempts and Deadline.
	FaultRules map[string]FaultRules `json:"fault_rules,omitempty" yaml:"fault_rules"`
	// FenceProof is what proves a host's copies off before an evacuation
	// (FenceProof*; "" is bmc, or service when ServiceFenceOnly is set).
	FenceProof string `json:"fence_proof,omitempty" yaml:"fence_proof"`
	// FabricFence: besides the proof, cut an evacuated server's old copy from the
	// network (Neutron ports down) and from its volumes (Cinder attachments) before
	// the evacuation, ports up again once it runs elsewhere. On by default.
	FabricFence bool `json:"fabric_fence" yaml:"fabric_fence"`
	// Priority (1-5, 5 first) orders restarts when capacity is short; a cluster's
	// own priority overrides it.
	Priority int `json:"priority" yaml:"priority"`
	// ReservedHosts are preferred as evacuation targets (spare hosts kept empty
	// for failover), in order; others are used only when none has room.
	ReservedHosts []string `json:"reserved_hosts,omitempty" yaml:"reserved_hosts"`
	// DryRun: Vigil detects, decides and journals each step it would take (state
	// StepWould) and takes none: no cloud, BMC or fabric mutation for this policy's
	// servers (or a host holding any of them).
	DryRun bool `json:"dry_run,omitempty" yaml:"dry_run"`
}

// Proof returns the policy's fence proof, the old service_fence_only folded in.
func (p Policy) Proof() string {
	if p.FenceProof != "" {
		return p.FenceProof
	}
	if p.ServiceFenceOnly {
		return FenceProofService
	}
	return FenceProofBMC
}

// AttemptsFor returns how many actions an incident of the given fault may take.
func (p Policy) AttemptsFor(fault string) int {
	if r, ok := p.FaultRules[fault]; ok && r.MaxAttempts > 0 {
		return r.MaxAttempts
	}
	return p.MaxAttempts
}

// DeadlineFor returns how long an incident of the given fault may take.
func (p Policy) DeadlineFor(fault string) time.Duration {
	if r, ok := p.FaultRules[fault]; ok && r.Deadline > 0 {
		return r.Deadline
	}
	return p.Deadline
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
			// A dead host's servers are evacuated; an isolated host is alive and
			// is left alone (a policy may move its servers away instead).
			FaultHostDead:     {ActEvacuate},
			FaultHostIsolated: {ActNotifyOnly},
		},
		FabricFence: true,
		Priority:    3,
	}
}

// Validate says what is wrong with a policy, naming the field.
func (p Policy) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("policy: name: must not be empty")
	}
	if len(p.Ladder) == 0 {
		return fmt.Errorf("policy %q: ladder: must list at least one action of %v", p.Name, LadderActions)
	}
	for i, a := range p.Ladder {
		if !slices.Contains(LadderActions, a) {
			return fmt.Errorf("policy %q: ladder[%d]: unknown action %q (want one of %v)", p.Name, i, a, LadderActions)
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
	case p.Priority < 1 || p.Priority > 5:
		return fmt.Errorf("policy %q: priority: must be 1 to 5 (5 restarts first), got %d", p.Name, p.Priority)
	case !slices.Contains(FenceProofs, p.Proof()):
		return fmt.Errorf("policy %q: fence_proof: unknown %q (want one of %v)", p.Name, p.FenceProof, FenceProofs)
	case p.ServiceFenceOnly && p.Proof() != FenceProofService:
		return fmt.Errorf("policy %q: service_fence_only: contradicts fence_proof %q (service_fence_only is fence_proof: service)", p.Name, p.FenceProof)
	}
	for _, f := range slices.Sorted(maps.Keys(p.Ladders)) {
		allowed, host := HostFaultActions[f]
		if !host {
			if !slices.Contains(Faults, f) {
				return fmt.Errorf("policy %q: ladders: unknown fault %q (want one of %v or %s, %s)", p.Name, f, Faults, FaultHostDead, FaultHostIsolated)
			}
			allowed = LadderActions
		}
		for i, a := range p.Ladders[f] {
			if !slices.Contains(allowed, a) {
				return fmt.Errorf("policy %q: ladders.%s[%d]: unknown action %q (want one of %v)", p.Name, f, i, a, allowed)
			}
		}
	}
	for _, f := range slices.Sorted(maps.Keys(p.FaultRules)) {
		r := p.FaultRules[f]
		if _, host := HostFaultActions[f]; !host && !slices.Contains(Faults, f) {
			return fmt.Errorf("policy %q: fault_rules: unknown fault %q (want one of %v or %s, %s)", p.Name, f, Faults, FaultHostDead, FaultHostIsolated)
		}
		if r.MaxAttempts < 0 {
			return fmt.Errorf("policy %q: fault_rules.%s.max_attempts: must not be negative, got %d", p.Name, f, r.MaxAttempts)
		}
		if r.Deadline < 0 {
			return fmt.Errorf("policy %q: fault_rules.%s.deadline: must not be negative, got %s", p.Name, f, r.Deadline)
		}
	}
	for i, h := range p.ReservedHosts {
		if h == "" || slices.Contains(p.ReservedHosts[:i], h) {
			return fmt.Errorf("policy %q: reserved_hosts[%d]: must be a host name listed once, got %q", p.Name, i, h)
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
	// Priority (1-5, 5 first; 0: the policy's) orders restarts when capacity is short.
	Priority int `json:"priority,omitempty"`
	// Source says where the members come from (nil: the IDs listed); see cluster.go.
	Source *ClusterSource `json:"source,omitempty"`
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
	// MaxParallel: actions of one round in flight at once (the executor's global
	// cap); PerHost and PerSegment cap those touching one host (a fence, a
	// force-down, a server's move off it) and one segment. Zero takes the default;
	// 1 runs the round's steps one after another.
	MaxParallel int `json:"max_parallel" yaml:"max_parallel"`
	PerHost     int `json:"per_host" yaml:"per_host"`
	PerSegment  int `json:"per_segment" yaml:"per_segment"`
	// ActionsPerMinute caps the actions taken on the cloud per minute (fence,
	// force-down, evacuations, reboots...), whatever their concurrency; 0: no cap.
	ActionsPerMinute int `json:"actions_per_minute" yaml:"actions_per_minute"`
	// BMCTimeout bounds each BMC read of the engine (power, identity); zero: the
	// engine's default (5 s). A reconcile never waits this long for one BMC.
	BMCTimeout time.Duration `json:"bmc_timeout" yaml:"bmc_timeout"`
}

// Parallel fills the executor's caps left zero with their defaults.
func (l Limits) Parallel() Limits {
	d := DefaultLimits()
	if l.MaxParallel <= 0 {
		l.MaxParallel = d.MaxParallel
	}
	if l.PerHost <= 0 {
		l.PerHost = d.PerHost
	}
	if l.PerSegment <= 0 {
		l.PerSegment = d.PerSegment
	}
	return l
}

// DefaultLimits are conservative defaults for a small cloud.
func DefaultLimits() Limits {
	return Limits{MaxConcurrent: 20, BrakeFraction: 0.5, BrakeMinHosts: 3,
		MaxParallel: 8, PerHost: 4, PerSegment: 6, ActionsPerMinute: 120}
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
