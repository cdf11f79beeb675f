package api

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// StoreReport is GET /v1/store: how big the store is, how much history it keeps,
// and what the last compaction removed.
type StoreReport struct {
	Kind         string          `json:"kind"` // sqlite or mysql
	Size         store.Size      `json:"size"`
	Retention    store.Retention `json:"retention"`
	CompactEvery time.Duration   `json:"compact_every"`
	// LastCompaction is when this replica last compacted (only a shard's leader
	// does) and what it removed; absent before the first.
	LastCompaction *Compaction `json:"last_compaction,omitempty"`
}

// Compaction is one compaction's outcome.
type Compaction struct {
	At      time.Time       `json:"at"`
	Took    time.Duration   `json:"took"`
	Removed store.Compacted `json:"removed"`
	Error   string          `json:"error,omitempty"`
}

// StoreReporter is what a Records also implements to serve GET /v1/store.
type StoreReporter interface {
	StoreReport(ctx context.Context) (StoreReport, error)
}

func (h *handler) storeReport(w http.ResponseWriter, r *http.Request) {
	sr, ok := h.rec.(StoreReporter)
	if !ok {
		write(w, http.StatusNotFound, Error{Error: "this Vigil does not report its store"})
		return
	}
	rep, err := sr.StoreReport(r.Context())
	if err != nil {
		write(w, http.StatusInternalServerError, Error{Error: err.Error()})
		return
	}
	write(w, http.StatusOK, withDurations(rep))
}
