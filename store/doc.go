// Package store defines what Vigil keeps durably: clusters, incidents with their
// recovery steps (the journal every step is written to before and after it runs),
// and the event log that explains every decision. Implementations live in
// sub-packages: store/sqlite is the embedded default.
//
// Leadership is a lease per shard kept in the store itself (Leadership, lead.Keeper):
// several Vigil replicas may share one store (MariaDB/MySQL), each leading some
// shards and standing by for the others. Every write to a recovery carries its
// leader's epoch; a write from a stale leader (one whose lease was taken over)
// fails with ErrStale and changes nothing. An SQLite file is opened by one process
// at a time: a second open fails (a *HeldError naming the live owner) before
// anything is read or written.
package store
