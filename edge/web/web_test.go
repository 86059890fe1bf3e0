package web_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/edge/web"
)

func TestPickLang(t *testing.T) {
	tests := []struct {
		name           string
		acceptLanguage string
		query          string
		want           string
	}{
		{"catalan_browser", "ca-ES,ca;q=0.9", "", "ca"},
		{"english_browser", "en-US,en;q=0.8,es;q=0.5", "", "en"},
		{"spanish_browser", "es-ES,es;q=0.9,en;q=0.8", "", "es"},
		{"unsupported_language", "fr", "", "es"},
		{"unsupported_then_supported", "fr-FR,fr;q=0.9,ca;q=0.8", "", "ca"},
		{"empty_header", "", "", "es"},
		{"q_values_out_of_order", "es;q=0.2,en;q=0.5,ca;q=0.9", "", "ca"},
		{"q_value_beats_position", "en;q=0.3,ca", "", "ca"},
		{"tie_goes_to_first", "en;q=0.5,ca;q=0.5", "", "en"},
		{"q_zero_is_refused", "ca;q=0,en;q=0.1", "", "en"},
		{"only_refused", "en;q=0", "", "es"},
		{"three_decimals", "ca;q=0.801,en;q=0.8", "", "ca"},
		{"case_and_spaces", "  EN-gb ; Q=0.7 , fr", "", "en"},
		{"underscore_separator", "ca_ES", "", "ca"},
		{"valencian_variant", "ca-ES-valencia", "", "ca"},
		{"other_params_ignored", "en;level=1;q=0.9,es;q=0.5", "", "en"},
		{"wildcard_picks_unnamed", "es;q=0,*", "", "ca"},
		{"wildcard_lower_than_named", "en,*;q=0.5", "", "en"},
		{"wildcard_higher_than_named", "en;q=0.2,*", "", "es"},
		{"query_overrides_header", "ca-ES,ca;q=0.9", "en", "en"},
		{"query_case_insensitive", "", "CA", "ca"},
		{"query_with_region", "en", "ca-ES", "ca"},
		{"query_unsupported_falls_back", "en-US", "fr", "en"},
		{"query_garbage_falls_back", "ca", "<script>", "ca"},
		{"garbage_header", "@@@;;;q=abc,,,==;q", "", "es"},
		{"invalid_q_skipped", "ca;q=2,en;q=abc,es;q=0.5", "", "es"},
		{"q_above_one_skipped", "ca;q=1.001,en;q=0.4", "", "en"},
		{"q_too_many_decimals_skipped", "ca;q=0.1234,en;q=0.1", "", "en"},
		{"prefix_not_a_match", "cat,eng,esp", "", "es"},
		{"only_separators", ",;,;", "", "es"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := web.PickLang(tt.acceptLanguage, tt.query)
			if got != tt.want {
				t.Errorf("PickLang(%q, %q) = %q, want %q", tt.acceptLanguage, tt.query, got, tt.want)
			}
		})
	}
}

func FuzzPickLang(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzPickLang.
	f.Add("ca-ES,ca;q=0.9", "")
	f.Fuzz(func(t *testing.T, acceptLanguage, query string) {
		got := web.PickLang(acceptLanguage, query)
		if got != "es" && got != "ca" && got != "en" {
			t.Fatalf("PickLang(%q, %q) = %q, want es, ca or en", acceptLanguage, query, got)
		}
		if q := strings.ToLower(strings.TrimSpace(query)); (q == "es" || q == "ca" || q == "en") && got != q {
			t.Fatalf("PickLang(%q, %q) = %q, want the query language %q", acceptLanguage, query, got, q)
		}
	})
}

func TestPage(t *testing.T) {
	for _, lang := range []string{"es", "ca", "en"} {
		t.Run(lang, func(t *testing.T) {
			page := string(web.Page(lang))
			for _, want := range []string{
				`<html lang="` + lang + `">`,
				`<script type="application/json" id="i18n">{`,
				`<script src="/static/pow.js?v=`,
				`<script src="/static/app.js?v=`,
				`<link rel="stylesheet" href="/static/style.css?v=`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("Page(%q) does not contain %q", lang, want)
				}
			}
			if strings.Contains(page, "{{") {
				t.Errorf("Page(%q) contains an unfilled placeholder", lang)
			}
		})
	}
}

func TestPage_unsupportedLang(t *testing.T) {
	page := string(web.Page("fr"))
	if !strings.Contains(page, `<html lang="es">`) {
		t.Errorf(`Page("fr") does not contain <html lang="es">`)
	}
}

func TestPage_title(t *testing.T) {
	dict := mustDictionary(t)
	for lang, text := range dict {
		want := "<title>" + text["title"] + "</title>"
		if !strings.Contains(string(web.Page(lang)), want) {
			t.Errorf("Page(%q) does not contain %q", lang, want)
		}
	}
}

// TestPage_inlineDictionary checks that the dictionary inlined in the page
// parses back to the dictionary file and cannot close its script element.
func TestPage_inlineDictionary(t *testing.T) {
	page := string(web.Page("en"))
	const open = `<script type="application/json" id="i18n">`
	_, rest, ok := strings.Cut(page, open)
	if !ok {
		t.Fatalf("Page has no %s element", open)
	}
	inline, _, ok := strings.Cut(rest, "</script>")
	if !ok {
		t.Fatalf("the i18n script element is not closed")
	}
	if strings.Contains(inline, "<") {
		t.Errorf("the inlined dictionary contains '<'")
	}
	var got map[string]map[string]string
	if err := json.Unmarshal([]byte(inline), &got); err != nil {
		t.Fatalf("parse inlined dictionary: %v", err)
	}
	want := mustDictionary(t)
	if len(got) != len(want) || got["en"]["title"] != want["en"]["title"] {
		t.Errorf("inlined dictionary differs from static/i18n.json")
	}
}

func TestAsset(t *testing.T) {
	tests := []struct {
		name            string
		wantType        string
		wantBodyContain string
	}{
		{"app.js", "text/javascript; charset=utf-8", "function startPage"},
		{"pow.js", "text/javascript; charset=utf-8", "function runPow"},
		{"style.css", "text/css; charset=utf-8", ".position"},
		{"i18n.json", "application/json", `"languageName"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, contentType, ok := web.Asset(tt.name)
			if !ok {
				t.Fatalf("Asset(%q) not found", tt.name)
			}
			if contentType != tt.wantType {
				t.Errorf("Asset(%q) content type = %q, want %q", tt.name, contentType, tt.wantType)
			}
			if !strings.Contains(string(body), tt.wantBodyContain) {
				t.Errorf("Asset(%q) body does not contain %q", tt.name, tt.wantBodyContain)
			}
		})
	}
}

func TestAsset_notFound(t *testing.T) {
	for _, name := range []string{"", "index.html", "missing.js", "/app.js", "static/app.js", "../web.go", "./app.js", "APP.JS"} {
		if _, _, ok := web.Asset(name); ok {
			t.Errorf("Asset(%q) found, want not found", name)
		}
	}
}

// TestDictionary checks that every language has the same keys, that every key
// the page uses exists, and that no key is unused.
func TestDictionary(t *testing.T) {
	dict := mustDictionary(t)
	en := dict["en"]
	for _, lang := range []string{"es", "ca"} {
		for key := range en {
			if dict[lang][key] == "" {
				t.Errorf("i18n.json: %q has no %s text", key, lang)
			}
		}
		for key := range dict[lang] {
			if _, ok := en[key]; !ok {
				t.Errorf("i18n.json: %q in %s is missing in en", key, lang)
			}
		}
	}

	html := mustReadFile(t, "static/index.html")
	js := mustReadScripts(t)
	used := map[string]bool{}
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`data-i18n(?:-label)?="(\w+)"`),
		regexp.MustCompile(`\bt\('(\w+)'`),
		regexp.MustCompile(`'((?:err|msg|conn|check)[A-Z]\w*)'`),
	}
	for _, re := range patterns {
		for _, m := range re.FindAllStringSubmatch(html+js, -1) {
			used[m[1]] = true
		}
	}
	// tn('key', n) picks "keyOne" or "keyOther" by the plural rules.
	for _, m := range regexp.MustCompile(`\btn\('(\w+)'`).FindAllStringSubmatch(js, -1) {
		used[m[1]+"One"] = true
		used[m[1]+"Other"] = true
	}
	for key := range used {
		if _, ok := en[key]; !ok {
			t.Errorf("the page uses key %q, which i18n.json does not have", key)
		}
	}

	// Keys read by name outside the patterns above: by Page, and by the
	// language switch in app.js.
	usedElsewhere := []string{"noscript", "languageName"}
	for key := range en {
		if !used[key] && !slices.Contains(usedElsewhere, key) {
			t.Errorf("i18n.json key %q is not used by the page", key)
		}
	}
}

// TestDictionary_placeholders checks that each text has the same {name}
// placeholders in every language, because the page fills them by name.
func TestDictionary_placeholders(t *testing.T) {
	dict := mustDictionary(t)
	placeholder := regexp.MustCompile(`\{\w+\}`)
	for key, enText := range dict["en"] {
		want := placeholder.FindAllString(enText, -1)
		slices.Sort(want)
		for _, lang := range []string{"es", "ca"} {
			got := placeholder.FindAllString(dict[lang][key], -1)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("i18n.json: %q in %s has placeholders %v, want %v as in en", key, lang, got, want)
			}
		}
	}
}

// TestScripts_noHTMLParsing checks that the scripts use none of the usual DOM
// APIs that parse a string as HTML, so text from the server is set as text.
func TestScripts_noHTMLParsing(t *testing.T) {
	js := mustReadScripts(t)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment", "DOMParser"} {
		if strings.Contains(js, sink) {
			t.Errorf("a script under static/ uses %s", sink)
		}
	}
}

func mustDictionary(tb testing.TB) map[string]map[string]string {
	tb.Helper()
	body, _, ok := web.Asset("i18n.json")
	if !ok {
		tb.Fatalf("Asset(%q) not found", "i18n.json")
	}
	var dict map[string]map[string]string
	if err := json.Unmarshal(body, &dict); err != nil {
		tb.Fatalf("parse i18n.json: %v", err)
	}
	return dict
}

// mustReadScripts returns the text of every static/*.js file.
func mustReadScripts(tb testing.TB) string {
	tb.Helper()
	names, err := filepath.Glob("static/*.js")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no scripts in static/: %v", err)
	}
	var all strings.Builder
	for _, name := range names {
		all.WriteString(mustReadFile(tb, name))
		all.WriteString("\n")
	}
	return all.String()
}

func mustReadFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}
