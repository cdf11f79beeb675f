// Package sqlite is the embedded Store: one file, pure Go (modernc.org/sqlite, no
// cgo), WAL mode, schema migrations applied at open. It must never lose a journaled
// step: each write is its own transaction, and epoch checks happen inside it.
//
// Its lease is an OS file lock (flock(2), exclusive) on "<file>.lock" beside the
// database, taken before the database is opened and held until Close. The kernel
// keeps it while the process lives and drops it when the process ends, however it
// ends, so a crashed owner never blocks a restart. The lock file also holds the
// owner's record (PID, host, start, API address), which is believed only while
// someone holds the lock: a record left behind by a dead owner means nothing.
// Written for Linux (flock on a local file system; on NFS, Linux emulates flock with
// byte-range locks, which do work across clients but are only as good as the
// server's lock manager). The lock file is never removed: removing it while an
// owner runs would let a second Vigil lock a new file of the same name.
package sqlite
