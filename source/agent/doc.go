// Package agent is Vigil's side of the host agents (package vigil/agent): the HTTP
// endpoint that receives their heartbeats (POST /v1/agent/beat) and answers each
// with the agent's orders (what to probe).
//
// It authenticates each beat with its host's own token (a token names one host: a
// beat for another host is refused), stamps it with Vigil's clock (never the
// agent's), and buffers it for the engine, which drains the buffer on its tick. A
// beat that brings news (domain events, or a report that differs from the host's
// last one) wakes the engine at once: that is how a crashed guest reaches Vigil in
// well under a second. It judges nothing: a beat is an observation.
package agent
