// Command vigil keeps virtual machines running: `vigil serve` watches and protects a
// cloud, `vigil demo` shows it on a simulated one, `vigil ctl` talks to a running
// Vigil over its REST API, `vigil sim` runs the deterministic simulation. This
// package only parses flags and wires; everything it runs lives in the packages.
package main
