package main

import "net/url"

// redact hides the password of a database URL before it is printed.
func redact(dsn string) string {
	if dsn == "" {
		return "(local)"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
