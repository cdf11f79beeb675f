// Package poll is the correctness backstop among Vigil's sources: it lists the
// cloud's hosts and servers in bulk, a full listing every so often and only what
// changed (changes-since) in between. Its cost per poll is constant in the number of
// servers: one call per kind, never one per server.
//
// It judges nothing: a failed listing becomes an observation that says the cloud
// could not be seen, from which detect concludes nothing.
package poll
