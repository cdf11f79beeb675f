// Package sim is Vigil's deterministic simulation: it runs the real engine (detect,
// plan, recover, the SQLite store in a temp dir) against cloud/sim on a virtual clock,
// under a fault schedule and world settings drawn from a seed, and checks Vigil's
// invariants after every step. The same seed and the same code give the same run,
// byte for byte in its event log, so a failing seed is a regression test forever
// (testdata/seeds; testdata/issue13-seeds.txt holds the seeds that show issue 13's
// holes until the core closes them; testdata/issue14-seeds.txt, issue 14's).
//
// The world is hostile the way a real cloud is: Vigil is down for minutes while
// hosts come back, its clock is off the cloud's, answers are lost, operators migrate,
// delete, force down and power on, BMCs lie or are miswired, notifications come late
// and twice. With host agents (the "agents" setting), beats come over two paths
// and from peers, late or lost, and guests hang, fail their apps, panic and lose
// their qemu behind Nova's back. The checkers compute what must hold from the truth (where copies really
// run, which host's power really went off) and never ask the engine's own functions.
//
// Everything runs on one goroutine: the engine's loop is driven tick by tick, API
// slowness advances the virtual clock, and a crash of Vigil is a new engine on the
// same store. It must never read the wall clock for anything that reaches the log.
package sim
