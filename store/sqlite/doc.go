// Package sqlite is the embedded Store: one file, pure Go (modernc.org/sqlite, no
// cgo), WAL mode, schema migrations applied at open. It must never lose a journaled
// step: each write is its own transaction, and epoch checks happen inside it.
package sqlite
