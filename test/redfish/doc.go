// Package redfish is a Redfish service for the tests of Vigil's Redfish fencing
// (fence/redfish): a small in-memory BMC that follows the DMTF schemas (service
// root, Systems, ComputerSystem with PowerState, UUID and #ComputerSystem.Reset,
// Managers, SessionService with X-Auth-Token sessions, HTTP basic authentication,
// Redfish error bodies), with fault modes (Hang, RefuseForceOff, Lie) and slow
// power transitions.
//
// It is used in-process by tests (Service is an http.Handler) and runs as a process
// (cmd/redfish-sim) so that a Redfish client from Debian (redfishtool, python3-sushy)
// can check it: the service is not Vigil agreeing with itself.
//
// It must never be used to fence anything real, and it keeps its state in memory only.
package redfish
