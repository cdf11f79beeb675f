// Package sim is Vigil's deterministic simulation: it runs the real engine (detect,
// plan, recover, the SQLite store in a temp dir) against cloud/sim on a virtual clock,
// under a fault schedule drawn from a seed, and checks Vigil's invariants after every
// step. The same seed and the same code give the same run, byte for byte in its event
// log, so a failing seed is a regression test forever (testdata/seeds).
//
// Everything runs on one goroutine: the engine's loop is driven tick by tick, API
// slowness advances the virtual clock, and a crash of Vigil is a new engine on the
// same store. It must never read the wall clock for anything that reaches the log.
package sim
