package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Assets returns the dashboard's files: index.html, app.js, style.css.
func Assets() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree has that directory: built in
	}
	return sub
}

// Handler serves the dashboard's files at the root of what it is mounted on.
func Handler() http.Handler {
	files := http.FileServerFS(Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page is small and changes with the binary: always revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Only this origin's scripts and API: no CDN, no inline script.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		files.ServeHTTP(w, r)
	})
}

// Mount serves the dashboard under /ui/ (and redirects / there) beside api, which
// serves everything else. The page is kept out of the API's router: it is not a
// REST resource, and the API's spec (api/openapi.yaml) lists only those.
func Mount(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.Handle("GET /ui/", http.StripPrefix("/ui", Handler()))
	mux.Handle("/", api)
	return mux
}
