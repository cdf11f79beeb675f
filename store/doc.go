// Package store defines what Vigil keeps durably: clusters, incidents with their
// recovery steps (the journal every step is written to before and after it runs),
// and the event log that explains every decision. Implementations live in
// sub-packages: store/sqlite is the embedded default.
//
// One live Vigil owns a store at a time: it holds the store's lease, and opening a
// store whose lease a live owner holds fails (a *HeldError naming that owner) before
// anything is read or written. Every write to a recovery also carries the owner's
// epoch; a write from a stale owner (a process that was replaced) fails with
// ErrStale and changes nothing.
package store
