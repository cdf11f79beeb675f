// Package plan decides what to do next: from the current verdicts, the clusters and
// their policies, the open incidents with their journaled steps, capacity and the
// limits, it returns the incidents to open or close and the steps to take.
//
// It is pure: no goroutines, no I/O, no clock reads; the time is in its Input. Every
// cap (attempts, concurrency, the brake, deadlines) is decided here, not in the shell.
// It imports only the standard library and model (checked by a test).
package plan
