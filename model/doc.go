// Package model holds Vigil's plain data types: hosts, servers, clusters, policies,
// observations, verdicts, incidents, recoveries and steps, with their health enums.
//
// It must never do I/O, start goroutines or read the clock: it imports only the
// standard library, so detect and plan can stay pure (checked by a test).
package model
