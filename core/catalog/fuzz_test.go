package catalog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/taquilla/taquilla/core/catalog"
)

// FuzzParse feeds arbitrary bytes to Parse. The seeds in
// testdata/fuzz/FuzzParse are the shipped catalogs in YAML and JSON, and
// broken variants of them. Parse must not panic; a failure must be made of
// *catalog.Error values; and a catalog it accepts must validate and come
// back equal after a round trip through JSON.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := catalog.Parse(bytes.NewReader(src))
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a catalog with the error %v", err)
			}
			var perr *catalog.Error
			if !errors.As(err, &perr) || err.Error() == "" {
				t.Fatalf("Parse error %q (%T) holds no *catalog.Error", err, err)
			}
			return
		}
		if c == nil {
			t.Fatal("Parse returned neither a catalog nor an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a catalog that Validate rejects: %v", err)
		}

		// encoding/json replaces invalid UTF-8 with U+FFFD, so the round
		// trip applies only to valid text.
		body, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal(parsed catalog): %v", err)
		}
		if !utf8.Valid(src) {
			return
		}
		again, err := catalog.Parse(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Parse(JSON of a parsed catalog): %v\nJSON: %s", err, body)
		}
		assertEqualCatalogs(t, again, c)
	})
}
