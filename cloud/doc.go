// Package cloud defines what Vigil needs of a compute cloud: bulk listing of servers
// and hosts, and the recovery actions (reboot, rebuild, evacuate, service force-down),
// plus the error classes drivers return (retryable or terminal).
//
// Drivers live in sub-packages: cloud/sim (in-memory, for the demo, tests and the
// simulation) and cloud/openstack (Nova). This package never does I/O itself.
package cloud
