package botfilter

import "strings"

// Verdict is the outcome of CheckHeaders.
type Verdict struct {
	// Bot is true when the request should be rejected.
	Bot bool
	// Reason is one of the Reason* constants, or "" when nothing was found.
	// It can be set while Bot is false, for a weak signal that callers
	// should count but not reject on.
	Reason string
}

// Reasons of a Verdict. They are stable identifiers for metrics.
const (
	ReasonEmptyUserAgent    = "empty_user_agent"
	ReasonScriptedUserAgent = "scripted_user_agent"
	ReasonNoAcceptLanguage  = "no_accept_language" // a weak signal only
)

// scriptedAgents are User-Agent prefixes of HTTP libraries and command-line
// tools, compared without regard to case. Browsers send none of them.
var scriptedAgents = []string{
	"curl/",
	"wget/",
	"python-requests/",
	"python-urllib/",
	"python-httpx/",
	"aiohttp/",
	"go-http-client/",
	"libwww-perl/",
}

// CheckHeaders flags requests by headers that no browser sends. Every
// browser sends a User-Agent, so an empty one (or only spaces) is always
// flagged. With strict set it also flags the User-Agent of a known HTTP
// library or tool, such as curl/8.5.0 or Go-http-client/1.1. Strict is off
// by default so that the curl examples of the documentation work.
//
// A missing Accept-Language is only a weak signal, so it sets Reason to
// ReasonNoAcceptLanguage with Bot false, in both modes.
func CheckHeaders(userAgent, acceptLanguage string, strict bool) Verdict {
	userAgent = strings.TrimSpace(userAgent)
	if userAgent == "" {
		return Verdict{Bot: true, Reason: ReasonEmptyUserAgent}
	}
	if strict && isScripted(userAgent) {
		return Verdict{Bot: true, Reason: ReasonScriptedUserAgent}
	}
	if strings.TrimSpace(acceptLanguage) == "" {
		return Verdict{Reason: ReasonNoAcceptLanguage}
	}
	return Verdict{}
}

func isScripted(userAgent string) bool {
	for _, prefix := range scriptedAgents {
		if len(userAgent) >= len(prefix) && strings.EqualFold(userAgent[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
