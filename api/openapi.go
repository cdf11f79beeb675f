package api

import (
	_ "embed"
	"net/http"
)

// Spec is the API's OpenAPI 3.0 document (api/openapi.yaml), served at GET
// /v1/openapi.yaml. Its test (openapi_test.go) keeps it and the routes in step.
//
//go:embed openapi.yaml
var Spec []byte

// serveSpec answers the spec; it needs no token (it holds no secret, and a client
// reads it before it has one).
func serveSpec(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(Spec)
}
