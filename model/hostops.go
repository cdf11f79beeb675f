package model

import "time"

// Maintenance is an operator's decision to take a host out of Vigil's care: no
// failure verdict, no incident that acts, no placement on it. It is journaled and
// outlives restarts of Vigil until the operator ends it.
type Maintenance struct {
	Host   string    `json:"host"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// RuleHostMaintenanceDown: a host in maintenance (an operator's, or Nova's disabled
// service) whose signals say it failed while protected servers are placed on it.
// Vigil does not recover them; its incident escalates at once and says so.
const RuleHostMaintenanceDown = "host-maintenance-down"

// HostReturn is the answer of the host-return operation: what was done (or found
// already done) in order, and what is left, for whom. Returned is true once the
// host's compute service is no longer forced down by Vigil.
type HostReturn struct {
	Host     string   `json:"host"`
	Returned bool     `json:"returned"`
	Done     []string `json:"done"`
	Left     []string `json:"left"`
}
