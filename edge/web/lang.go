package web

import "strings"

// defaultLang is the page language when neither the query nor the
// Accept-Language header names a supported one.
const defaultLang = "es"

// supportedLangs lists the page languages. Their order breaks ties when a
// wildcard "*" in Accept-Language is the best match.
var supportedLangs = [...]string{"es", "ca", "en"}

// qMax is the q-value 1 in thousandths, the precision RFC 9110 allows.
const qMax = 1000

// PickLang returns "es", "ca" or "en": the query value if it is one of them,
// else the best match of the Accept-Language header (respect q-values), else
// "es".
//
// Both inputs match by their primary subtag, case-insensitively, so "ca-ES"
// and "EN_gb" count as "ca" and "en". Header entries with a higher q win, and
// an earlier entry wins a tie. Entries with q=0 and entries with an invalid
// q-value are skipped. A wildcard "*" stands for the first supported language
// that the header does not name.
func PickLang(acceptLanguage, query string) string {
	if lang, ok := matchLang(query); ok {
		return lang
	}

	best, bestQ, bestPos := "", 0, 0
	wildQ, wildPos := 0, 0
	var named [len(supportedLangs)]bool

	pos := 0
	for entry := range strings.SplitSeq(acceptLanguage, ",") {
		pos++
		tag, q, ok := parseLanguageRange(entry)
		if !ok {
			continue
		}
		if tag == "*" {
			if q > wildQ {
				wildQ, wildPos = q, pos
			}
			continue
		}
		lang, ok := matchLang(tag)
		if !ok {
			continue
		}
		named[langIndex(lang)] = true
		if q > bestQ {
			best, bestQ, bestPos = lang, q, pos
		}
	}

	if wildQ > bestQ || (wildQ > 0 && wildQ == bestQ && wildPos < bestPos) {
		for i, lang := range supportedLangs {
			if !named[i] {
				return lang
			}
		}
	}
	if best != "" {
		return best
	}
	return defaultLang
}

// matchLang returns the supported language whose code is the primary subtag of
// tag.
func matchLang(tag string) (string, bool) {
	tag = strings.TrimSpace(tag)
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	for _, lang := range supportedLangs {
		if strings.EqualFold(tag, lang) {
			return lang, true
		}
	}
	return "", false
}

func langIndex(lang string) int {
	for i, l := range supportedLangs {
		if l == lang {
			return i
		}
	}
	return 0
}

// parseLanguageRange splits one Accept-Language entry such as "ca-ES;q=0.9"
// into its language range and its q-value in thousandths (1000 when absent).
// It reports false for an empty range or a malformed q-value. Parameters other
// than q are ignored.
func parseLanguageRange(entry string) (tag string, q int, ok bool) {
	tag, params, _ := strings.Cut(entry, ";")
	tag = strings.TrimSpace(tag)
	if tag == "" {
		return "", 0, false
	}

	q = qMax
	for param := range strings.SplitSeq(params, ";") {
		name, value, found := strings.Cut(strings.TrimSpace(param), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, ok = parseQValue(strings.TrimSpace(value))
		if !ok {
			return "", 0, false
		}
	}
	return tag, q, true
}

// parseQValue parses a qvalue of RFC 9110 section 12.4.2: "0" or "1",
// optionally followed by a dot and up to three digits, at most 1.000. It
// returns the value in thousandths.
func parseQValue(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	rest := s[1:]
	if rest == "" {
		return whole * qMax, true
	}
	if rest[0] != '.' || len(rest) > 4 {
		return 0, false
	}

	frac, scale := 0, 100
	for i := 1; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		frac += int(c-'0') * scale
		scale /= 10
	}
	q := whole*qMax + frac
	if q > qMax {
		return 0, false
	}
	return q, true
}
