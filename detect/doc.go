// Package detect turns observations into verdicts: which servers have failed, which
// hosts are suspect or down, and whether the cloud can be seen at all. Each verdict
// carries the rule that fired and its evidence.
//
// It is pure: no goroutines, no I/O, no clock reads. The time is an argument, so the
// same observations at the same times always give the same verdicts. It imports only
// the standard library and model (checked by a test).
package detect
