package catalog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/core/catalog"
)

func mustBuiltin(tb testing.TB, name string) *catalog.Catalog {
	tb.Helper()
	c, err := catalog.Builtin(name)
	if err != nil {
		tb.Fatalf("Builtin(%q): %v", name, err)
	}
	return c
}

func TestBuiltin_lux(t *testing.T) {
	c := mustBuiltin(t, "lux")
	if len(c.Shows) != 8 {
		t.Fatalf("lux has %d shows, want 8", len(c.Shows))
	}

	// Every show sells its venue's map, so the tour's places are the sum of
	// the venue capacities over the shows.
	perShow := map[int]int{} // places of a show → number of shows
	total, sellable := 0, 0
	for _, s := range c.Shows {
		v := c.Venue(s.Venue)
		if v == nil {
			t.Fatalf("show %s: no venue %q", s.ID, s.Venue)
		}
		perShow[v.Capacity()]++
		total += v.Capacity()
		sellable += v.SellableCapacity()
	}
	if want := map[int]int{17_500: 4, 18_000: 4}; !reflect.DeepEqual(perShow, want) {
		t.Errorf("shows by places = %v, want %v", perShow, want)
	}
	if total != 142_000 {
		t.Errorf("total places = %d, want 142000", total)
	}
	if sellable != total {
		t.Errorf("sellable places = %d, want all %d (lux blocks none)", sellable, total)
	}
	if got := c.Venue("movistar-arena").Capacity(); got != 17_500 {
		t.Errorf("movistar-arena capacity = %d, want 17500", got)
	}
	if got := c.Venue("palau-sant-jordi").Capacity(); got != 18_000 {
		t.Errorf("palau-sant-jordi capacity = %d, want 18000", got)
	}
}

func TestBuiltin_smoke(t *testing.T) {
	c := mustBuiltin(t, "smoke")
	if len(c.Shows) != 1 {
		t.Fatalf("smoke has %d shows, want 1", len(c.Shows))
	}
	v := c.Venue(c.Shows[0].Venue)
	if v == nil {
		t.Fatalf("smoke show venue %q not found", c.Shows[0].Venue)
	}
	if v.Capacity() != 1000 || v.SellableCapacity() != 1000 {
		t.Errorf("smoke venue places = %d, sellable %d, want 1000 and 1000", v.Capacity(), v.SellableCapacity())
	}
}

func TestBuiltin_unknown(t *testing.T) {
	_, err := catalog.Builtin("nope")
	if err == nil || !strings.Contains(err.Error(), `no built-in catalog "nope"`) {
		t.Errorf(`Builtin("nope") error = %v, want no built-in catalog "nope"`, err)
	}
}

// TestParse_jsonRoundTrip encodes the LUX catalog as JSON and parses it
// again: JSON is a subset of YAML, so the catalog must come back equal.
func TestParse_jsonRoundTrip(t *testing.T) {
	lux := mustBuiltin(t, "lux")
	body, err := json.MarshalIndent(lux, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Parse(JSON of lux): %v", err)
	}
	assertEqualCatalogs(t, got, lux)
}

// assertEqualCatalogs compares two catalogs field by field. Times compare
// with Equal, because two parses of the same offset give equal instants
// with distinct *time.Location values.
func assertEqualCatalogs(t *testing.T, got, want *catalog.Catalog) {
	t.Helper()
	if len(got.Shows) != len(want.Shows) {
		t.Fatalf("got %d shows, want %d", len(got.Shows), len(want.Shows))
	}
	g, w := *got, *want
	g.Shows = append([]catalog.Show(nil), got.Shows...)
	w.Shows = append([]catalog.Show(nil), want.Shows...)
	for i := range g.Shows {
		if !g.Shows[i].StartsAt.Equal(w.Shows[i].StartsAt) {
			t.Errorf("shows[%d].starts_at = %v, want %v", i, g.Shows[i].StartsAt, w.Shows[i].StartsAt)
		}
		g.Shows[i].StartsAt = w.Shows[i].StartsAt
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("catalogs differ:\n got %+v\nwant %+v", g, w)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	smoke := mustBuiltin(t, "smoke")
	body, err := json.Marshal(smoke)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"smoke.json", "smoke.yaml", "smoke.yml"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, body, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := catalog.Load(path)
			if err != nil {
				t.Fatalf("Load(%s): %v", path, err)
			}
			assertEqualCatalogs(t, c, smoke)
		})
	}

	t.Run("builtin_name", func(t *testing.T) {
		c, err := catalog.Load("smoke")
		if err != nil {
			t.Fatalf(`Load("smoke"): %v`, err)
		}
		assertEqualCatalogs(t, c, smoke)
	})

	t.Run("err_extension", func(t *testing.T) {
		path := filepath.Join(dir, "smoke.txt")
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := catalog.Load(path)
		if err == nil || !strings.Contains(err.Error(), "unsupported file extension") {
			t.Errorf("Load(%s) error = %v, want unsupported file extension", path, err)
		}
	})

	t.Run("err_missing_file", func(t *testing.T) {
		_, err := catalog.Load(filepath.Join(dir, "none.yaml"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Load(none.yaml) error = %v, want os.ErrNotExist", err)
		}
	})

	t.Run("err_names_file", func(t *testing.T) {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte("tour: x\ntypo: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := catalog.Load(path)
		want := path + ":2:1: typo: unknown field, want one of tour, venues, shows"
		if err == nil || err.Error() != want {
			t.Errorf("Load(bad.yaml) error = %v, want %s", err, want)
		}
	})
}
