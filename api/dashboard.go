package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// WithDashboard serves the web dashboard (package web's Handler) under /ui/, and
// redirects / there.
func WithDashboard(ui http.Handler) Option {
	return func(h *handler) {
		if ui == nil {
			return
		}
		h.root = append(h.root, func(r chi.Router) {
			r.Get("/", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/ui/", http.StatusFound)
			})
			r.Get("/ui", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			})
			files := http.StripPrefix("/ui", ui)
			r.Get("/ui/*", files.ServeHTTP)
			r.Head("/ui/*", files.ServeHTTP)
		})
	}
}
