package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Every route the API serves declares its query parameters (queryParams), so an
// unknown filter is a 400 and never silently ignored; a route that keeps its
// own rules (Masakari's) is listed in ownRules.
func TestEveryRouteDeclaresItsQueryParameters(t *testing.T) {
	// The options of openapi_test.go's allOptions: a feature that adds one adds it there and here.
	h := Handler(nil, nil, slog.New(slog.DiscardHandler), WithMasakari(NewMasakari(MasakariConfig{})),
		WithMetrics(http.NotFoundHandler()), WithStream(NewStream(nil, nil)), WithBrakes(), WithAuth(AuthConfig{}))
	served := map[string]bool{}
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.Replace(route, "/*/", "/", -1)
		if len(route) > 1 {
			route = strings.TrimSuffix(route, "/")
		}
		if slices.Contains(ownRules, route) || slices.Contains(ownRules, route+"/") {
			return nil
		}
		key := method + " " + route
		served[key] = true
		if _, ok := queryParams[key]; !ok {
			t.Errorf("route %s declares no query parameters: add it to queryParams in api/params.go (nil if it takes none)", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range queryParams {
		if !served[key] {
			t.Errorf("queryParams lists %s, which the API does not serve", key)
		}
	}
}

// The configuration answers write durations as the policy file does; the JSON
// tags' names, omitempty and omitzero are kept, and field order too.
func TestWithDurations(t *testing.T) {
	rep := StoreReport{Kind: "sqlite", Retention: store.Retention{EventsMaxAge: 720 * time.Hour, ClosedMaxAge: 90 * time.Second},
		CompactEvery: time.Hour, LastCompaction: &Compaction{Took: 1500 * time.Millisecond}}
	b := mustJSON(t, withDurations(rep))
	for _, want := range []string{`"compact_every":"1h"`, `"events_max_age":"720h"`, `"closed_max_age":"1m30s"`, `"took":"1.5s"`, `"kind":"sqlite"`} {
		if !strings.Contains(b, want) {
			t.Errorf("store report lacks %s: %s", want, b)
		}
	}
	if strings.Contains(b, `"error"`) {
		t.Errorf("omitempty not kept: %s", b)
	}
	if strings.Index(b, `"kind"`) > strings.Index(b, `"compact_every"`) {
		t.Errorf("fields out of order: %s", b)
	}
	p := model.DefaultPolicy()
	p.FaultRules = map[string]model.FaultRules{"hung": {Deadline: 2 * time.Minute}}
	b = mustJSON(t, withDurations(map[string]model.Policy{"default": p}))
	for _, want := range []string{`"step_timeout":"1m"`, `"host_down_grace":"10s"`, `"deadline":"10m"`, `"hung":{"deadline":"2m"}`, `"max_attempts":8`} {
		if !strings.Contains(b, want) {
			t.Errorf("policy lacks %s: %s", want, b)
		}
	}
	if got := mustJSON(t, withDurations([]model.Incident{})); got != "[]" {
		t.Errorf("a value without durations changed: %s", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
