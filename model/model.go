package model

import (
	"fmt"
	"time"
)

// HostHealth is Vigil's verdict on a hypervisor host.
type HostHealth string

const (
	HostUp          HostHealth = "up"
	HostSuspect     HostHealth = "suspect"
	HostDown        HostHealth = "down"
	HostIsolated    HostHealth = "isolated"
	HostMaintenance HostHealth = "maintenance"
)

// ServerHealth is Vigil's verdict on a server (a VM).
type ServerHealth string

const (
	ServerHealthy    ServerHealth = "healthy"
	ServerSuspect    ServerHealth = "suspect"
	ServerFailed     ServerHealth = "failed"
	ServerRecovering ServerHealth = "recovering"
	ServerUnknown    ServerHealth = "unknown"
)

// ClusterHealth reports a protected group against its desired state.
type ClusterHealth string

const (
	Green  ClusterHealth = "Green"
	Yellow ClusterHealth = "Yellow"
	Red    ClusterHealth = "Red"
)

// Nova server statuses (the subset Vigil reasons about; others pass through as strings).
const (
	StatusBuild      = "BUILD"
	StatusActive     = "ACTIVE"
	StatusShutoff    = "SHUTOFF"
	StatusPaused     = "PAUSED"
	StatusSuspended  = "SUSPENDED"
	StatusError      = "ERROR"
	StatusReboot     = "REBOOT"
	StatusHardReboot = "HARD_REBOOT"
	StatusRebuild    = "REBUILD"
	StatusMigrating  = "MIGRATING"
	StatusResize     = "RESIZE"
	StatusVerify     = "VERIFY_RESIZE"
	StatusDeleted    = "DELETED"
)

// PowerIntent is what the server's owner last asked for: a server its owner stopped
// is not a failed server.
type PowerIntent string

const (
	IntentUnknown PowerIntent = ""
	IntentOn      PowerIntent = "on"
	IntentOff     PowerIntent = "off"
)

// Power is a host's chassis power as its BMC reports it.
type Power string

const (
	PowerUnknown Power = ""
	PowerOn      Power = "on"
	PowerOff     Power = "off"
)

// ServiceState is the compute service's liveness as the cloud reports it.
type ServiceState string

const (
	ServiceUp   ServiceState = "up"
	ServiceDown ServiceState = "down"
)

// Host is a hypervisor as observed.
type Host struct {
	Name    string       `json:"name"`
	Segment string       `json:"segment,omitempty"`
	Service ServiceState `json:"service"`
	// ForcedDown: the compute service was forced down (Nova's service fence).
	ForcedDown bool `json:"forced_down"`
	Disabled   bool `json:"disabled"`
	// Maintenance: an operator took the host out of Vigil's care.
	Maintenance bool `json:"maintenance"`
	// Power is the BMC's last answer; PowerUnknown when not asked or no BMC.
	Power Power `json:"power,omitempty"`
	// Capacity in server slots; 0 means unknown (the cloud's scheduler places).
	Capacity int `json:"capacity,omitempty"`
	// LastSeenUp is the compute service's last heartbeat, when the cloud reports it.
	LastSeenUp time.Time `json:"last_seen_up,omitzero"`
	// Free is what the cloud's Placement service counts free on the host ((total -
	// reserved) * allocation_ratio - used, per resource); meaningful only when
	// FreeKnown (a cloud without Placement, or not read yet: the scheduler decides).
	Free      Resources `json:"free,omitzero"`
	FreeKnown bool      `json:"free_known,omitempty"`
	// FreeAt is when Free was read (the same clock as the observation's At): an
	// evacuation the cloud took after it is not in Free yet.
	FreeAt time.Time `json:"free_at,omitzero"`
}

// Server is a VM as observed.
type Server struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Host      string      `json:"host"`
	Status    string      `json:"status"`
	TaskState string      `json:"task_state,omitempty"`
	Intent    PowerIntent `json:"power_intent,omitempty"`
	Image     string      `json:"image,omitempty"`
	Updated   time.Time   `json:"updated,omitzero"`
	// Metadata is the server's user metadata (vigil:cluster, vigil:policy define
	// clusters); not in the JSON (the core shapes no JSON).
	Metadata Metadata `json:"-"`
	// Flavor is what the server needs of a host (its flavor's vCPUs, RAM, disk);
	// zero when the cloud did not say.
	Flavor Resources `json:"flavor,omitzero"`
}

// Observation is what a source saw at one instant. A full observation lists every
// server (a member absent from it is missing); a partial one (changes-since, a
// notification) lists only what changed.
type Observation struct {
	At time.Time `json:"at"`
	// CloudAt is the cloud's own clock at the observation (zero when unknown): the
	// time to compare the cloud's timestamps (updated_at, heartbeats) with.
	CloudAt time.Time `json:"cloud_at,omitzero"`
	Source  string    `json:"source"`
	Full    bool      `json:"full"`
	Servers []Server  `json:"servers,omitempty"`
	Deleted []string  `json:"deleted,omitempty"`
	// Hosts, when non-nil, is the complete list of compute hosts.
	Hosts []Host `json:"hosts,omitempty"`
	// Power holds BMC answers by host name.
	Power map[string]Power `json:"power,omitempty"`
	// Identity holds the identity of the BMC each host's fence entry reaches (its
	// system GUID), by host name; IdentityErr a BMC's refusal to be trusted (a GUID
	// that does not match the one pinned in the configuration).
	Identity    map[string]string `json:"identity,omitempty"`
	IdentityErr map[string]string `json:"identity_error,omitempty"`
	// Err says the source could not see the cloud; nothing may be concluded from it.
	Err string `json:"error,omitempty"`
	// Poll asks for a bulk poll now: the source saw a change it cannot describe
	// fully (a compute service update), so the cloud is read level-triggered.
	Poll bool `json:"poll,omitempty"`
	// Actions holds the action log the cloud keeps (Nova's os-instance-actions) of
	// the servers the detector asked about (detect's NeedHistory), by server ID.
	Actions map[string][]InstanceAction `json:"actions,omitempty"`
	// Agents are host agents' heartbeats (with their reports), in arrival order.
	Agents []AgentBeat `json:"agents,omitempty"`
	// Monitors are external monitors' reports (masakari-monitors notifications).
	Monitors []MonitorReport `json:"monitors,omitempty"`
	// ServerGroups, when non-nil, is the complete list of the cloud's server groups.
	ServerGroups []ServerGroup `json:"server_groups,omitempty"`
}

// Subject names what a verdict or incident is about.
type Subject struct {
	Kind string `json:"kind"` // "server" or "host"
	ID   string `json:"id"`
}

const (
	KindServer = "server"
	KindHost   = "host"
)

func (s Subject) String() string { return s.Kind + "/" + s.ID }

// Verdict is detect's conclusion about one subject, with the evidence that led to it.
type Verdict struct {
	Subject Subject `json:"subject"`
	Server  string  `json:"server_health,omitempty"`
	Host    string  `json:"host_health,omitempty"`
	Failed  bool    `json:"failed"`
	// Fault says what kind of failure a failed server has (model.Fault*): it picks
	// the policy's ladder. Empty for hosts and for servers not failed.
	Fault    string   `json:"fault,omitempty"`
	Rule     string   `json:"rule"`
	Evidence []string `json:"evidence"`
	// Since is when the condition was first observed; At when the verdict was reached.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
}

func (v Verdict) String() string {
	return fmt.Sprintf("%s %s (%s): %v", v.Subject, v.health(), v.Rule, v.Evidence)
}

func (v Verdict) health() string {
	if v.Host != "" {
		return v.Host
	}
	return v.Server
}

// RuleServerHostDown is the verdict rule for a server whose host failed: the host's
// incident answers it, never a server incident of its own.
const RuleServerHostDown = "server-host-down"

// RuleServerMigrationInterrupted is the verdict rule for a server that failed while
// (or right after) being migrated or resized, never seen running since: its copy may
// run on the destination, so recovering it in place could start a second one.
const RuleServerMigrationInterrupted = "server-migration-interrupted"

// RuleServerHistoryUnread is the verdict rule for a protected server down in place
// whose action log must be read before it is called failed (a move Vigil did not
// watch may have put its copy elsewhere): nothing is done to it meanwhile.
const RuleServerHistoryUnread = "server-history-unread"
