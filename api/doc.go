// Package api is Vigil's REST API (JSON over HTTP, under /v1) and /healthz: clusters
// with their health, hosts, servers, incidents with their steps, and the event log.
//
// It validates every request body before anything is stored: a bad request gets a
// 400 that names the field and changes nothing. It never decides or acts itself.
package api
