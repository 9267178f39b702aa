package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The web UI: plain HTML, CSS and JavaScript with uPlot (vendored, MIT)
// for the charts, embedded so a fresh clone builds without npm.
//
//go:embed web/index.html web/app.js web/style.css web/vendor
var webFiles embed.FS

// uiPages are the UI's paths; each serves index.html, whose script picks
// the page from location.pathname.
var uiPages = []string{"/{$}", "/data-plane", "/control-plane", "/metrics-browser", "/traces"}

// uiRoutes registers the web UI: its pages and, under /ui/, its assets.
func (s *Server) uiRoutes(mux *http.ServeMux) {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	}
	for _, p := range uiPages {
		mux.HandleFunc("GET "+p, page)
	}
	assets := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		assets.ServeHTTP(w, r)
	}))
}
