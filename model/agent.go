package model

import (
	"fmt"
	"strings"
	"time"
)

// The signals beyond the compute API: a host agent's heartbeats (one per path),
// what it sees of its host's domains and guests, and what an external monitor
// (masakari-monitors) reports. All of them are observations: a detector weighs
// them, nothing acts on one directly.

// Paths an agent may heartbeat over. Any name is allowed; these are the usual ones.
const (
	PathManagement = "management"
	PathStorage    = "storage"
)

// AgentBeat is one heartbeat of a host agent, as received on one path.
type AgentBeat struct {
	Host string `json:"host"`
	// Path names the network the beat came over (management, storage...).
	Path string `json:"path"`
	// Boot identifies the agent's run: it changes when the agent restarts.
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"`
	// Sent is the agent's clock when it sent the beat; At is Vigil's clock when the
	// beat arrived (set by the receiver, never taken from the agent).
	Sent time.Time `json:"sent"`
	At   time.Time `json:"at"`
	// Interval is the agent's heartbeat interval.
	Interval time.Duration `json:"interval"`
	// Peers are the peer agents this one hears, with how long ago (on its own clock)
	// it last heard each, at Sent.
	Peers map[string]time.Duration `json:"peers,omitempty"`
	// Report is the agent's view of its host; nil when unchanged since the last one
	// (an agent repeats it every few beats and on every change).
	Report *HostReport `json:"report,omitempty"`
}

// HostReport is what a host agent sees of its host.
type HostReport struct {
	// Libvirt is "" when the agent reaches libvirtd, else why it cannot: the
	// domains below are then the last ones it saw.
	Libvirt string `json:"libvirt,omitempty"`
	// Domains are every domain libvirt knows on the host, running or not.
	Domains []Domain `json:"domains"`
	// Events are the lifecycle events since the agent's previous report, in order.
	Events []DomainEvent `json:"events,omitempty"`
}

// Domain states as libvirt names them.
const (
	DomainRunning  = "running"
	DomainPaused   = "paused"
	DomainShutoff  = "shutoff"
	DomainCrashed  = "crashed"
	DomainBlocked  = "blocked"
	DomainShutdown = "shutdown" // shutting down
	DomainPMSusp   = "pmsuspended"
)

// Domain state reasons that matter to Vigil (libvirt's, lower case, dashed).
const (
	ReasonCrashed   = "crashed"   // shutoff: qemu died (killed, crashed)
	ReasonFailed    = "failed"    // shutoff: qemu failed to start or died
	ReasonPanicked  = "panicked"  // crashed: the guest kernel panicked (pvpanic)
	ReasonWatchdog  = "watchdog"  // paused/shutoff: the guest's watchdog fired
	ReasonIOError   = "io-error"  // paused: an I/O error on a disk
	ReasonShutdown  = "shutdown"  // shutoff: the guest shut itself down
	ReasonDestroyed = "destroyed" // shutoff: someone destroyed it (libvirt API)
	ReasonMigrated  = "migrated"  // shutoff/paused: it left for another host
	ReasonUser      = "user"      // paused: someone suspended it
	ReasonBooted    = "booted"    // running
)

// Domain is one libvirt domain on a host. Under Nova its UUID is the server's ID.
type Domain struct {
	UUID   string `json:"uuid"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Since is when the agent first saw the domain in this state and reason (its clock).
	Since time.Time `json:"since,omitzero"`
	// GuestAgent is the QEMU guest agent's ping probe; nil when not probed (the
	// domain has no agent channel, or does not run).
	GuestAgent *Probe `json:"guest_agent,omitempty"`
	// Apps are the application probes of the domain's cluster.
	Apps []Probe `json:"apps,omitempty"`
}

// Probe is the state of one probe of a guest.
type Probe struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Failures counts the consecutive failed tries (0 when OK); Threshold is how
	// many the policy wants before the guest is judged.
	Failures  int       `json:"failures"`
	Threshold int       `json:"threshold"`
	Last      time.Time `json:"last,omitzero"` // agent clock of the last try
	Error     string    `json:"error,omitempty"`
}

// DomainEvent is one libvirt lifecycle (or panic, watchdog, I/O error) event.
type DomainEvent struct {
	UUID   string    `json:"uuid"`
	Name   string    `json:"name"`
	At     time.Time `json:"at"`     // agent clock
	Event  string    `json:"event"`  // started, stopped, suspended, resumed, crashed, shutdown...
	Detail string    `json:"detail"` // crashed, panicked, failed, destroyed, migrated, watchdog, io-error...
}

// MonitorReport is an external monitor's report (a masakari-monitors notification):
// an observation, never a command.
type MonitorReport struct {
	// ID is the notification's UUID, as answered to the monitor.
	ID string `json:"id"`
	// Type is Masakari's: COMPUTE_HOST, VM or PROCESS.
	Type string `json:"type"`
	Host string `json:"host"`
	// Server is a VM notification's instance UUID.
	Server string `json:"server,omitempty"`
	// Event is the payload's event (STOPPED, STARTED, LIFECYCLE, QEMU_GUEST_AGENT_ERROR...).
	Event string `json:"event"`
	// Payload holds the payload's other fields as sent (host_status, cluster_status,
	// process_name, vir_domain_event...).
	Payload map[string]string `json:"payload,omitempty"`
	// Generated is the monitor's clock; At is Vigil's when it arrived.
	Generated time.Time `json:"generated,omitzero"`
	At        time.Time `json:"at"`
}

// Server faults: what kind of failure a failed server's verdict is, which picks the
// policy's ladder for it (Policy.Ladders).
const (
	FaultCrashed   = "crashed"    // the domain died (qemu gone, ERROR, stopped unasked)
	FaultPanicked  = "panicked"   // the guest kernel panicked
	FaultHung      = "hung"       // the domain runs, its guest agent does not answer
	FaultAppFailed = "app-failed" // the guest answers, an application probe fails
	FaultIOError   = "io-error"   // paused on an I/O error
	FaultWatchdog  = "watchdog"   // the guest's watchdog fired
	FaultMissing   = "missing"    // the server is gone from the cloud
)

// Faults lists the server faults a policy may give a ladder of its own.
var Faults = []string{FaultCrashed, FaultPanicked, FaultHung, FaultAppFailed, FaultIOError, FaultWatchdog, FaultMissing}

// Host health values beyond the compute service's up/down.
const (
	// HostDead: proven dead (its BMC says off after it was on, and no path answers).
	HostDead HostHealth = "dead"
	// HostPartitioned: Vigil lost many hosts at once that still hear each other:
	// Vigil itself is cut off; nothing is done, loudly.
	HostPartitioned HostHealth = "controller-partitioned"
)

// KindAgent is the subject kind of a verdict on a host's agent (a dead agent is
// not a dead host).
const KindAgent = "agent"

// AgentOrders is Vigil's answer to a heartbeat: what the agent should probe. An
// agent keeps the last orders it got while Vigil is away. Orders never tell an agent
// to act on its host or guests: agents observe, Vigil decides.
type AgentOrders struct {
	// Interval is the heartbeat interval Vigil expects (0: keep the agent's own).
	Interval time.Duration `json:"interval,omitempty"`
	// Probes are the probes of each domain (by UUID, Nova's server ID) that belongs
	// to a protected cluster; other domains are only listed.
	Probes map[string]DomainProbes `json:"probes,omitempty"`
}

// DomainProbes are the probes of one domain, from its cluster's policy.
type DomainProbes struct {
	GuestAgent *ProbeSpec  `json:"guest_agent,omitempty"`
	Apps       []ProbeSpec `json:"apps,omitempty"`
}

// StateKey is what of a report counts as a change: the libvirt error, each domain's
// state and reason, each probe's verdict and failure count. Times (Since, a probe's
// Last) move on every report and are left out, as are events (news of their own).
// An agent sends a report at once when its key changes; Vigil wakes on a new key.
func (r *HostReport) StateKey() string {
	if r == nil {
		return ""
	}
	var sb strings.Builder
	sb.WriteString(r.Libvirt)
	for _, d := range r.Domains {
		fmt.Fprintf(&sb, "|%s %s %s %s", d.UUID, d.Name, d.State, d.Reason)
		if d.GuestAgent != nil {
			fmt.Fprintf(&sb, " %s:%t/%d", d.GuestAgent.Name, d.GuestAgent.OK, d.GuestAgent.Failures)
		}
		for _, p := range d.Apps {
			fmt.Fprintf(&sb, " %s:%t/%d", p.Name, p.OK, p.Failures)
		}
	}
	return sb.String()
}
