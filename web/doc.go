// Package web holds the dashboard: a page and its script and style, embedded in
// the binary (nothing is fetched from elsewhere at run time) and served by the API
// (api.WithDashboard). The page reads only the public REST API and its event
// stream (GET /v1/stream); it never changes anything.
package web
