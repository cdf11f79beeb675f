// Package poll is the correctness backstop among Vigil's sources: it lists the
// cloud's hosts and servers in bulk, a full listing every so often and only what
// changed (changes-since) in between. Its cost per poll is constant in the number of
// servers: one call per kind, never one per server.
//
// changes-since is computed on the cloud's clock (cloud.Clock, when the driver has
// one), never on Vigil's: Nova compares it with updated_at, which it stamps on its
// own clock. Each observation carries that clock as CloudAt.
//
// It judges nothing: a failed listing becomes an observation that says the cloud
// could not be seen, from which detect concludes nothing.
package poll
