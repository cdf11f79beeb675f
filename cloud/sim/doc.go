// Package sim is an in-memory cloud with Nova's server state machine, compute
// services that go down and can be forced down, a BMC per host, and fault and error
// injection. It is a real implementation of cloud.Compute and cloud.Fencer, shared by
// the demo, unit tests and the deterministic simulation; it never stands in for a
// real peer in an integration test.
//
// Time comes from the clock it is given, so a virtual clock makes it deterministic:
// an action's effect lands ActionLatency after it was accepted, applied lazily at the
// next call. It is safe for concurrent use and keeps per-operation call counts.
// It also tracks where each server really runs (its copies), which the cloud's API
// does not show: the simulation checks "never two copies" against it.
package sim
