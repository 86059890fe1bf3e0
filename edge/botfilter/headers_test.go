package botfilter_test

import (
	"testing"

	"github.com/taquilla/taquilla/edge/botfilter"
)

const (
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	languages = "es-ES,es;q=0.9,ca;q=0.8,en;q=0.7"
)

func TestCheckHeaders(t *testing.T) {
	tests := []struct {
		name           string
		userAgent      string
		acceptLanguage string
		strict         bool
		want           botfilter.Verdict
	}{
		{"browser", firefoxUA, languages, false, botfilter.Verdict{}},
		{"browser_strict", firefoxUA, languages, true, botfilter.Verdict{}},
		{"empty_user_agent", "", languages, false, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonEmptyUserAgent}},
		{"blank_user_agent", " \t", languages, false, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonEmptyUserAgent}},
		{"empty_user_agent_strict", "", languages, true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonEmptyUserAgent}},
		{"curl_allowed", "curl/8.5.0", "", false, botfilter.Verdict{Reason: botfilter.ReasonNoAcceptLanguage}},
		{"curl_strict", "curl/8.5.0", "", true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"python_requests_strict", "python-requests/2.32.3", languages, true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"go_client_strict", "Go-http-client/1.1", "", true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"wget_strict", "Wget/1.21.4", "", true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"case_insensitive", "CURL/7.0", languages, true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"leading_space", "  curl/8.5.0", languages, true, botfilter.Verdict{Bot: true, Reason: botfilter.ReasonScriptedUserAgent}},
		{"tool_name_later_is_fine", "Mozilla/5.0 (compatible; curl-like)", languages, true, botfilter.Verdict{}},
		{"bare_curl_word", "curl", languages, true, botfilter.Verdict{}},
		{"no_accept_language", firefoxUA, "", false, botfilter.Verdict{Reason: botfilter.ReasonNoAcceptLanguage}},
		{"blank_accept_language_strict", firefoxUA, "  ", true, botfilter.Verdict{Reason: botfilter.ReasonNoAcceptLanguage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := botfilter.CheckHeaders(tt.userAgent, tt.acceptLanguage, tt.strict)
			if got != tt.want {
				t.Errorf("CheckHeaders(%q, %q, %v) = %+v, want %+v", tt.userAgent, tt.acceptLanguage, tt.strict, got, tt.want)
			}
		})
	}
}

func TestCheckHeaders_noAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		botfilter.CheckHeaders(firefoxUA, languages, true)
	})
	if allocs != 0 {
		t.Errorf("CheckHeaders allocated %v times per call, want 0", allocs)
	}
}
