// Package sim is an in-memory cloud with Nova's server state machine (statuses and
// task states as Nova names them), compute services that go down and can be forced
// down or disabled, a BMC per host, and fault and error injection. It is a real
// implementation of cloud.Compute, cloud.Fencer and cloud.Identifier, shared by the
// demo, unit tests and the deterministic simulation; it never stands in for a real
// peer in an integration test.
//
// Time comes from the clock it is given, so a virtual clock makes it deterministic:
// an accepted action runs in phases, each carried out by one compute after its delay
// and hanging while that compute is dead, applied lazily at the next call. Every
// timestamp it shows (updated, instance actions, service heartbeats) is on this
// clock, the cloud's, not its caller's. It is safe for concurrent use and keeps
// per-operation call counts.
//
// What it models because real Nova does it, and Vigil must live with it:
//   - an evacuation keeps the source host (REBUILD, rebuilding) until the conductor
//     places it, and Nova records it: the source's compute destroys its local copy
//     only when it next starts (init_host); reset-state stops nothing;
//   - a compute that starts again resumes the guests of ACTIVE servers still
//     assigned to it (resume_guests_state_on_host_boot), else stops them;
//   - any service update (force down or up, disable) bumps the service's updated_at;
//   - operators' live and cold migrations and resizes; a live migration's copy
//     switches to the destination before the source finishes it;
//   - answers lost after the action was carried out; a controller outage that stops
//     every heartbeat; BMCs that do not answer, lie, are missing or belong to another
//     host (each BMC has an identity, its GUID).
//
// With EnableAgents, every host runs an agent (agents.go): beats on two paths
// (management, storage) to the controller, peers of its segment, its domains and
// guest probes, a report at once on every change; faults cut a path, kill an agent,
// delay and drop beats, hang a guest, fail its app, panic it or kill its qemu (Nova
// sees the last two only at its power sync). A dead host's agent is silent.
//
// It also tracks where each server really runs (its copies), which the cloud's API
// does not show: the simulation checks "never two copies" against it.
package sim
