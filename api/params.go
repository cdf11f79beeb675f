package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
)

// queryParams declares every route's query parameters, by "METHOD pattern" (the
// pattern as chi writes it, /v1 included): any other parameter is a 400 naming
// it, so a filter the route does not know is never silently ignored. A route
// with none is listed with none. HEAD routes take their GET's. A new route adds
// its line here (TestEveryRouteDeclaresItsQueryParameters fails until it does).
var queryParams = map[string][]string{
	"GET /healthz":                        nil,
	"GET /readyz":                         nil,
	"GET /v1/leadership":                  nil,
	"GET /v1/openapi.yaml":                nil,
	"GET /v1/clusters":                    {"limit", "marker", "health", "policy"},
	"POST /v1/clusters":                   nil,
	"GET /v1/clusters/{name}":             nil,
	"DELETE /v1/clusters/{name}":          nil,
	"PATCH /v1/clusters/{name}":           nil,
	"GET /v1/hosts":                       {"limit", "marker", "segment"},
	"DELETE /v1/hosts/{name}/fence-doubt": nil,
	"POST /v1/hosts/{name}/drain":         nil,
	"POST /v1/hosts/{name}/maintenance":   nil,
	"POST /v1/hosts/{name}/return":        nil,
	"GET /v1/servers":                     {"limit", "marker", "host", "cluster"},
	"GET /v1/cloud":                       nil,
	"GET /v1/policies":                    nil,
	"GET /v1/incidents":                   {"limit", "marker", "state", "cluster", "host"},
	"GET /v1/incidents/{id}":              nil,
	"GET /v1/events":                      {"after", "limit"},
	"GET /v1/store":                       nil,
	"GET /metrics":                        nil,
	"GET /v1/explain/{kind}/{id}":         nil,
	"GET /v1/stream":                      {"after"},
	"POST /v1/tokens":                     nil,
	"GET /v1/tokens":                      nil,
	"DELETE /v1/tokens/{name}":            nil,
}

// ownRules lists the routes that keep their own rules for the query (Masakari's
// notification endpoint answers as Masakari does): not checked here.
var ownRules = []string{"/v1/", "/v1/notifications", "/v1/{project_id}/notifications"}

// allowParams returns a 400 naming the first query parameter of r not in names,
// or one given twice. A handler may call it itself; strictQuery calls it with the
// route's declared parameters.
func allowParams(r *http.Request, names ...string) error {
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return &engine.InvalidError{Field: k, Msg: fmt.Sprintf("unknown query parameter (%s)", known(names))}
		}
		if len(q[k]) > 1 {
			return &engine.InvalidError{Field: k, Msg: "query parameter given more than once"}
		}
	}
	return nil
}

func known(names []string) string {
	if len(names) == 0 {
		return "this route takes none"
	}
	return "this route takes " + strings.Join(names, ", ")
}

// routeOf finds the pattern of the route r goes to (HEAD: its GET's), or "".
func routeOf(r *http.Request) (method, pattern string) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return "", ""
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	method = r.Method
	tctx := chi.NewRouteContext()
	if !rctx.Routes.Match(tctx, method, path) {
		if method != http.MethodHead {
			return "", ""
		}
		method, tctx = http.MethodGet, chi.NewRouteContext()
		if !rctx.Routes.Match(tctx, method, path) {
			return "", ""
		}
	}
	return method, tctx.RoutePattern()
}

// strictQuery refuses a query parameter the route does not declare (queryParams).
func strictQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, pattern := routeOf(r)
		names, declared := queryParams[method+" "+pattern]
		if r.URL.RawQuery == "" || !declared {
			next.ServeHTTP(w, r)
			return
		}
		var ie *engine.InvalidError
		if err := allowParams(r, names...); errors.As(err, &ie) {
			write(w, http.StatusBadRequest, Error{Error: ie.Error(), Field: ie.Field})
			return
		}
		next.ServeHTTP(w, r)
	})
}
