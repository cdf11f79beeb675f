package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// inputRules are the middleware every route gets before any option's: HEAD is
// served by a route's GET (middleware.GetHead: no body is sent), and a query
// parameter the route does not declare is a 400 (strictQuery).
func inputRules() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{middleware.GetHead, strictQuery}
}

// routeMethods are the methods the API routes, in the order Allow lists them.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods r's path is served with: every 405 says them in its
// Allow header (RFC 9110 §15.5.6). HEAD goes with GET.
func allowed(r *http.Request) []string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return nil
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var out []string
	for _, m := range routeMethods {
		probe := m
		if m == http.MethodHead {
			probe = http.MethodGet
		}
		if rctx.Routes.Match(chi.NewRouteContext(), probe, path) {
			out = append(out, m)
		}
	}
	return out
}

// methodNotAllowed is the API's 405: an Allow header and a JSON error naming them.
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := strings.Join(allowed(r), ", ")
	w.Header().Set("Allow", allow)
	write(w, http.StatusMethodNotAllowed, Error{Error: "method " + r.Method + " not allowed on " + r.URL.Path + "; allowed: " + allow})
}
