package api

import (
	"net/http"

	"github.com/vigil-ha/vigil/engine"
)

// sourceRequest says where a new cluster's members come from:
// {"kind": "heat-stack", "ref": "web"}, "server-group" (ID or name), "metadata"
// (servers whose vigil:cluster metadata is ref), or "ids" (the members listed).
type sourceRequest struct {
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
}

// editRequest adds servers to and removes servers from a cluster that lists them.
type editRequest struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

// editCluster: PATCH /v1/clusters/{name} {"add": [...], "remove": [...]}. 400 names
// the wrong field; 409 for a cluster whose members follow its source.
func (h *handler) editCluster(w http.ResponseWriter, r *http.Request) {
	var req editRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	name := pathParam(r, "name")
	if _, err := h.eng.EditCluster(r.Context(), name, req.Add, req.Remove); err != nil {
		h.fail(w, err)
		return
	}
	for _, st := range h.eng.Clusters() {
		if st.Name == name {
			write(w, http.StatusOK, st)
			return
		}
	}
	h.fail(w, &engine.InvalidError{Field: "name", Msg: "cluster " + name + " vanished during the edit"})
}
