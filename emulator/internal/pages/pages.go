// Package pages renders the emulator's HTML pages (the pre-built UI, the outbox, the admin
// pages) in their shared layout.
package pages

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"

	"example.com/passwordless/internal/theme"
)

//go:embed templates/*.html
var templateFiles embed.FS

// stylesheet is the emulator pages' own rules, served after the shared theme.
//
//go:embed pages.css
var stylesheet []byte

var pageNames = []string{"message", "choose", "code", "link", "outbox", "admin"}

// Pages holds the parsed templates.
type Pages struct {
	pages map[string]*template.Template
	log   *slog.Logger
}

// New parses one template per page, each with the shared layout.
func New(log *slog.Logger) (*Pages, error) {
	p := &Pages{pages: map[string]*template.Template{}, log: log}
	for _, name := range pageNames {
		t, err := template.ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("emulator: parse template %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// Render executes a page into a buffer first, so a template error never sends half a page.
func (p *Pages) Render(w http.ResponseWriter, status int, page string, data map[string]any) {
	var buf bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		p.log.Error("render page", "page", page, "err", err)
		http.Error(w, "The page could not be rendered; see the emulator log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Message shows a page with a title and one sentence (an alert for 4xx/5xx).
func (p *Pages) Message(w http.ResponseWriter, status int, title, text string) {
	data := map[string]any{"Title": title}
	if status >= 400 {
		data["Alert"] = text
	} else {
		data["Status"] = text
	}
	p.Render(w, status, "message", data)
}

// favicon is the emulator's icon: a key on amber, to tell its tabs from the app's.
const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#b25e09"/>` +
	`<circle cx="12" cy="16" r="5" fill="none" stroke="#fff" stroke-width="3"/><path d="M17 16h10v4M23 16v3" stroke="#fff" stroke-width="3" fill="none"/></svg>`

// Favicon serves GET /favicon.svg.
func Favicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write([]byte(favicon))
}

// Theme serves GET /static/theme.css, the stylesheet shared with the app (internal/theme).
func Theme(w http.ResponseWriter, r *http.Request) { serveCSS(w, theme.CSS) }

// Stylesheet serves GET /static/emulator.css, the pages' own rules.
func Stylesheet(w http.ResponseWriter, r *http.Request) { serveCSS(w, stylesheet) }

func serveCSS(w http.ResponseWriter, css []byte) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(css)
}
