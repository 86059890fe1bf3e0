// Package web serves the fan page: one HTML page with a vanilla JS app (the
// proof of work in pow.js, the page in app.js) and a stylesheet, embedded in
// the binary, with text in Spanish, Catalan and English.
//
// The page template and the text dictionary are rendered once at init, so
// Page and Asset only look up prebuilt byte slices.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"path"
	"strings"
)

//go:embed static
var staticFiles embed.FS

// pageTemplate is the name of the HTML template under static/. It is not
// served by Asset because its placeholders are filled in by Page.
const pageTemplate = "index.html"

// dictionaryFile holds the page's text, one object of key → text per language.
const dictionaryFile = "i18n.json"

// contentTypes maps the extensions of the embedded files to their Content-Type.
// It is a fixed table rather than mime.TypeByExtension, which reads the host's
// /etc/mime.types and may differ between machines.
var contentTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

type asset struct {
	body        []byte
	contentType string
}

var (
	assets map[string]asset  // by file name under static/, without the template
	pages  map[string][]byte // by language: the rendered page
)

func init() {
	var err error
	assets, err = loadAssets()
	if err != nil {
		panic(fmt.Sprintf("edge/web: load embedded assets: %v", err))
	}
	pages, err = renderPages()
	if err != nil {
		panic(fmt.Sprintf("edge/web: render fan page: %v", err))
	}
}

// Page returns the HTML of the fan page with <html lang="LANG"> and the language
// set for the script. A lang other than "es", "ca" or "en" gets the Spanish page.
//
// The returned slice is shared by all callers and must not be modified.
func Page(lang string) []byte {
	if p, ok := pages[lang]; ok {
		return p
	}
	return pages[defaultLang]
}

// Asset returns a static file by its path under /static/ (e.g. "app.js"), its
// Content-Type, and whether it exists. The name must match exactly: no leading
// slash and no "static/" prefix.
//
// The page links assets with a "?v=" query holding a hash of their content, so
// a server may let browsers cache them for a long time.
// The returned slice is shared by all callers and must not be modified.
func Asset(name string) (body []byte, contentType string, ok bool) {
	a, ok := assets[name]
	if !ok {
		return nil, "", false
	}
	return a.body, a.contentType, true
}

func loadAssets() (map[string]asset, error) {
	entries, err := fs.ReadDir(staticFiles, "static")
	if err != nil {
		return nil, err
	}

	loaded := make(map[string]asset, len(entries))
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == pageTemplate {
			continue
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil, fmt.Errorf("no content type for static/%s", name)
		}
		body, err := staticFiles.ReadFile("static/" + name)
		if err != nil {
			return nil, err
		}
		loaded[name] = asset{body: body, contentType: ct}
	}
	return loaded, nil
}

// renderPages fills the page template once per language.
func renderPages() (map[string][]byte, error) {
	tmpl, err := staticFiles.ReadFile("static/" + pageTemplate)
	if err != nil {
		return nil, err
	}
	dictJSON, ok := assets[dictionaryFile]
	if !ok {
		return nil, fmt.Errorf("missing static/%s", dictionaryFile)
	}
	var dict map[string]map[string]string
	if err := json.Unmarshal(dictJSON.body, &dict); err != nil {
		return nil, fmt.Errorf("parse static/%s: %w", dictionaryFile, err)
	}
	inline, err := inlineJSON(dictJSON.body)
	if err != nil {
		return nil, fmt.Errorf("compact static/%s: %w", dictionaryFile, err)
	}

	rendered := make(map[string][]byte, len(supportedLangs))
	for _, lang := range supportedLangs {
		text, ok := dict[lang]
		if !ok {
			return nil, fmt.Errorf("static/%s has no %q section", dictionaryFile, lang)
		}
		r := strings.NewReplacer(
			"{{LANG}}", lang,
			"{{TITLE}}", html.EscapeString(text["title"]),
			"{{NOSCRIPT}}", html.EscapeString(text["noscript"]),
			"{{I18N}}", inline,
			"{{POW_VERSION}}", contentVersion("pow.js"),
			"{{APP_VERSION}}", contentVersion("app.js"),
			"{{STYLE_VERSION}}", contentVersion("style.css"),
		)
		rendered[lang] = []byte(r.Replace(string(tmpl)))
	}
	return rendered, nil
}

// inlineJSON compacts a JSON document for a <script type="application/json">
// element. Every '<' becomes \u003c, which is the same JSON string but can
// neither close the element ("</script>") nor open a comment ("<!--").
func inlineJSON(doc []byte) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return "", err
	}
	return strings.ReplaceAll(buf.String(), "<", `\u003c`), nil
}

// contentVersion returns a short hash of an asset's content for cache busting,
// or "0" when the asset does not exist.
func contentVersion(name string) string {
	a, ok := assets[name]
	if !ok {
		return "0"
	}
	sum := sha256.Sum256(a.body)
	return hex.EncodeToString(sum[:6])
}
