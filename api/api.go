package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Engine is what the API needs of the engine.
type Engine interface {
	Clusters() []model.ClusterStatus
	Hosts() []engine.HostStatus
	Servers() []engine.ServerStatus
	Cloud() engine.CloudStatus
	CreateCluster(ctx context.Context, c model.Cluster) error
	DeleteCluster(ctx context.Context, name string) error
	EditCluster(ctx context.Context, name string, add, remove []string) (model.Cluster, error)
	Policies() map[string]model.Policy
	TrustFence(ctx context.Context, host string) error
	SetMaintenance(ctx context.Context, host string, on bool, reason string) (engine.MaintenanceResult, error)
	ReturnHost(ctx context.Context, host string) (model.HostReturn, error)
}

// Records is what the API needs of the store.
type Records interface {
	Incidents(ctx context.Context, limit int) ([]model.Incident, error)
	QueryIncidents(ctx context.Context, q store.IncidentQuery) ([]model.Incident, error)
	Incident(ctx context.Context, id int64) (model.Incident, error)
	Events(ctx context.Context, after int64, limit int) ([]model.Event, error)
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Option configures the API handler (Handler). Each feature that plugs into the
// API (Masakari's notifications, auth, metrics, the dashboard) is one option, in
// its own file.
type Option func(*handler)

// WithMasakari also serves Masakari's notifications (see NewMasakari).
func WithMasakari(m *Masakari) Option {
	return func(h *handler) {
		if m != nil {
			h.v1 = append(h.v1, m.Routes)
		}
	}
}

// Handler returns the API's routes.
func Handler(eng Engine, rec Records, log *slog.Logger, opts ...Option) http.Handler {
	h := &handler{eng: eng, rec: rec, log: log, middleware: inputRules()}
	for _, o := range opts {
		o(h)
	}
	r := chi.NewRouter()
	for _, mw := range h.middleware {
		r.Use(mw)
	}
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	for _, mount := range h.root {
		mount(r)
	}
	r.Route("/v1", func(r chi.Router) {
		r.Use(h.leaderOnly)
		r.Get("/leadership", h.leadership)
		r.Get("/openapi.yaml", serveSpec)
		r.Get("/clusters", h.listClusters)
		r.Post("/clusters", h.createCluster)
		r.Get("/clusters/{name}", h.getCluster)
		r.Delete("/clusters/{name}", h.deleteCluster)
		r.Patch("/clusters/{name}", h.editCluster)
		r.Get("/hosts", h.listHosts)
		r.Delete("/hosts/{name}/fence-doubt", h.trustFence)
		r.Post("/hosts/{name}/drain", h.drainHost)
		r.Post("/hosts/{name}/maintenance", h.maintenance)
		r.Post("/hosts/{name}/return", h.returnHost)
		r.Get("/servers", h.listServers)
		r.Get("/cloud", func(w http.ResponseWriter, r *http.Request) { write(w, http.StatusOK, h.eng.Cloud()) })
		r.Get("/policies", func(w http.ResponseWriter, r *http.Request) { write(w, http.StatusOK, withDurations(h.eng.Policies())) })
		r.Get("/incidents", h.listIncidents)
		r.Get("/incidents/{id}", h.getIncident)
		r.Get("/events", h.listEvents)
		r.Get("/explain/{kind}/{id}", h.explainChain) // api/explain.go
		r.Get("/store", h.storeReport)
		for _, mount := range h.v1 {
			mount(r)
		}
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusNotFound, Error{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(methodNotAllowed)
	return r
}

type handler struct {
	eng Engine
	rec Records
	log *slog.Logger
	// Added by options: middleware on every route, routes at the root and under /v1.
	middleware []func(http.Handler) http.Handler
	root, v1   []func(chi.Router)
}

func write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	var ie *engine.InvalidError
	var se *statusError
	switch {
	case errors.As(err, &se):
		write(w, se.code, Error{Error: se.msg, Field: "body"})
	case errors.As(err, &ie):
		write(w, http.StatusBadRequest, Error{Error: ie.Error(), Field: ie.Field})
	case errors.Is(err, store.ErrNotFound):
		write(w, http.StatusNotFound, Error{Error: err.Error()})
	case errors.Is(err, store.ErrExists), errors.Is(err, engine.ErrFollowsSource):
		write(w, http.StatusConflict, Error{Error: err.Error()})
	default:
		h.log.Error("api", "err", err)
		write(w, http.StatusInternalServerError, Error{Error: err.Error()})
	}
}

func (h *handler) getCluster(w http.ResponseWriter, r *http.Request) {
	name := pathParam(r, "name")
	for _, c := range h.eng.Clusters() {
		if c.Name == name {
			write(w, http.StatusOK, c)
			return
		}
	}
	h.fail(w, fmt.Errorf("cluster %q: %w", name, store.ErrNotFound))
}

// clusterRequest mirrors model.Cluster with pointers, to tell a missing field from a zero.
type clusterRequest struct {
	Name    *string  `json:"name"`
	Members []string `json:"members"`
	Desired *int     `json:"desired"`
	Policy  string   `json:"policy"`
	// Source, when given, defines the members (see clusters.go).
	Source *sourceRequest `json:"source"`
	// Priority (1-5, 5 first; 0 or absent: the policy's) orders restarts when room is short.
	Priority int `json:"priority"`
}

func (h *handler) createCluster(w http.ResponseWriter, r *http.Request) {
	var req clusterRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if req.Name == nil {
		h.fail(w, &engine.InvalidError{Field: "name", Msg: "is required"})
		return
	}
	if req.Priority < 0 || req.Priority > 5 {
		h.fail(w, &engine.InvalidError{Field: "priority", Msg: fmt.Sprintf("must be 1 to 5 (5 restarts first), or 0 for the policy's; got %d", req.Priority)})
		return
	}
	c := model.Cluster{Name: *req.Name, Members: req.Members, Policy: req.Policy, Desired: len(req.Members), Priority: req.Priority}
	if req.Desired != nil {
		c.Desired = *req.Desired
	}
	if c.Policy == "" {
		c.Policy = "default"
	}
	if req.Source != nil {
		c.Source = &model.ClusterSource{Kind: req.Source.Kind, Ref: req.Source.Ref, FixedDesired: req.Desired != nil}
	}
	if err := h.eng.CreateCluster(r.Context(), c); err != nil {
		h.fail(w, err)
		return
	}
	for _, st := range h.eng.Clusters() {
		if st.Name == c.Name {
			write(w, http.StatusCreated, st)
			return
		}
	}
	write(w, http.StatusCreated, c)
}

func (h *handler) deleteCluster(w http.ResponseWriter, r *http.Request) {
	if err := h.eng.DeleteCluster(r.Context(), pathParam(r, "name")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// trustFence clears the doubt on a host's fence device (an operator fixed its BMC
// or its entry): Vigil may fence through it again.
func (h *handler) trustFence(w http.ResponseWriter, r *http.Request) {
	if err := h.eng.TrustFence(r.Context(), pathParam(r, "name")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func intParam(r *http.Request, name string, def, max int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, &engine.InvalidError{Field: name, Msg: fmt.Sprintf("must be an integer from 0 to %d, got %q", max, s)}
	}
	return n, nil
}

func (h *handler) getIncident(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		h.fail(w, &engine.InvalidError{Field: "id", Msg: "must be an integer"})
		return
	}
	in, err := h.rec.Incident(r.Context(), id)
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, in)
}

// drainer is what the drain endpoint needs of the engine (engine.Engine has it).
type drainer interface {
	Drain(ctx context.Context, host string) (model.Incident, error)
}

// drainHost moves every protected server off a live host (engine.Drain): 202 with
// the drain's incident, to follow at /v1/incidents/{id}.
func (h *handler) drainHost(w http.ResponseWriter, r *http.Request) {
	d, ok := h.eng.(drainer)
	if !ok {
		write(w, http.StatusNotImplemented, Error{Error: "this Vigil cannot drain hosts"})
		return
	}
	inc, err := d.Drain(r.Context(), pathParam(r, "name"))
	if errors.Is(err, engine.ErrDrainRefused) {
		write(w, http.StatusConflict, Error{Error: err.Error()})
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusAccepted, inc)
}
