package api

import (
	"net/http"

	"github.com/vigil-ha/vigil/engine"
)

// maintenanceRequest: on is required (true: into maintenance, false: out of it).
type maintenanceRequest struct {
	On     *bool  `json:"on"`
	Reason string `json:"reason"`
}

// maintenance puts a host in maintenance or takes it out (POST
// /v1/hosts/{name}/maintenance {"on": true, "reason": "..."}): journaled, it
// outlives restarts. 404 for a host the cloud does not list.
func (h *handler) maintenance(w http.ResponseWriter, r *http.Request) {
	var req maintenanceRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if req.On == nil {
		h.fail(w, &engine.InvalidError{Field: "on", Msg: "is required: true puts the host in maintenance, false takes it out"})
		return
	}
	if len(req.Reason) > 1024 {
		h.fail(w, &engine.InvalidError{Field: "reason", Msg: "must be at most 1024 characters"})
		return
	}
	res, err := h.eng.SetMaintenance(r.Context(), pathParam(r, "name"), *req.On, req.Reason)
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, res)
}

// returnHost undoes Vigil's own force-down of a host once its servers were moved
// and it is healthy (POST /v1/hosts/{name}/return, no body): 200 with what was
// done and what is left (returned false while something is), 404 for a host the
// cloud does not list. It may take up to the engine's ReturnWait.
func (h *handler) returnHost(w http.ResponseWriter, r *http.Request) {
	res, err := h.eng.ReturnHost(r.Context(), pathParam(r, "name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, res)
}
