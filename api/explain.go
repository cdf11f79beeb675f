package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/explain"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// explainLimit bounds what an explanation reads: the newest incidents searched for
// a subject's, and the events scanned (in pages) for the chain's journal.
const (
	explainIncidents = 10000
	explainPage      = 10000
)

// explainChain serves GET /v1/explain/{kind}/{id}: kind is incident (id its
// number), server (its ID) or host (its name). The answer is explain.Chain.
func (h *handler) explainChain(w http.ResponseWriter, r *http.Request) {
	kind, id := chi.URLParam(r, "kind"), chi.URLParam(r, "id")
	ctx := r.Context()
	switch kind {
	case "incident":
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			h.fail(w, &engine.InvalidError{Field: "id", Msg: fmt.Sprintf("%q is not an incident number (a positive integer)", id)})
			return
		}
		in, err := h.rec.Incident(ctx, n)
		if err != nil {
			h.fail(w, fmt.Errorf("incident %d: %w", n, err))
			return
		}
		evs, err := h.allEvents(ctx)
		if err != nil {
			h.fail(w, err)
			return
		}
		write(w, http.StatusOK, explain.Build(in, evs))
	case model.KindServer, model.KindHost:
		subj := model.Subject{Kind: kind, ID: id}
		current, known := h.currentVerdict(subj)
		incs, err := h.rec.Incidents(ctx, explainIncidents)
		if err != nil {
			h.fail(w, err)
			return
		}
		seen := known
		for _, in := range incs {
			seen = seen || in.Subject == subj
		}
		if !seen {
			h.fail(w, fmt.Errorf("%s %s: Vigil neither sees it nor journaled an incident of it: %w", kind, id, store.ErrNotFound))
			return
		}
		evs, err := h.allEvents(ctx)
		if err != nil {
			h.fail(w, err)
			return
		}
		write(w, http.StatusOK, explain.ForSubject(subj, incs, evs, current))
	default:
		h.fail(w, &engine.InvalidError{Field: "kind", Msg: fmt.Sprintf("%q is not incident, server or host", kind)})
	}
}

// currentVerdict is the engine's verdict on a server or host now (nil, false: the
// engine does not see it).
func (h *handler) currentVerdict(subj model.Subject) (*model.Verdict, bool) {
	if subj.Kind == model.KindHost {
		for _, hs := range h.eng.Hosts() {
			if hs.Name == subj.ID {
				v := hs.Verdict
				return &v, true
			}
		}
		return nil, false
	}
	for _, s := range h.eng.Servers() {
		if s.ID == subj.ID {
			v := s.Verdict
			return &v, true
		}
	}
	return nil, false
}

// allEvents reads the journal's events, oldest first, in pages.
func (h *handler) allEvents(ctx context.Context) ([]model.Event, error) {
	var all []model.Event
	for after := int64(0); ; {
		page, err := h.rec.Events(ctx, after, explainPage)
		if err != nil {
			return nil, fmt.Errorf("read the journal's events: %w", err)
		}
		all = append(all, page...)
		if len(page) < explainPage {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}
