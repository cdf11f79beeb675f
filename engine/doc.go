// Package engine is Vigil's reconcile loop: observe the cloud (a bulk poll, or an
// observation pushed by a source), let detect judge it, let plan decide, let recover
// journal and act, and keep the picture the API shows. It owns the order of those
// calls and nothing else: decisions live in detect and plan, I/O in the drivers,
// durability in the store.
//
// One Engine is one owner epoch: a new Engine on the same store claims every open
// recovery, resumes it, and fences the old one out.
package engine
