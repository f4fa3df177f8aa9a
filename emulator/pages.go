package emulator

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
)

//go:embed templates/*.html
var templateFiles embed.FS

var pageNames = []string{"message", "choose", "code", "outbox", "admin"}

// parsePages builds one template per page, each with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("emulator: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render executes a page into a buffer first, so a template error never sends half a page.
func (e *Emulator) render(w http.ResponseWriter, status int, page string, data map[string]any) {
	var buf bytes.Buffer
	if err := e.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		e.log.Error("render page", "page", page, "err", err)
		http.Error(w, "The page could not be rendered; see the emulator log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderMessage shows a page with a title and one sentence (an alert for 4xx/5xx).
func (e *Emulator) renderMessage(w http.ResponseWriter, status int, title, text string) {
	data := map[string]any{"Title": title}
	if status >= 400 {
		data["Alert"] = text
	} else {
		data["Status"] = text
	}
	e.render(w, status, "message", data)
}
