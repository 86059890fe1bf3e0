package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/core/catalog"
)

func TestCheck(t *testing.T) {
	summary, err := catalog.Check("lux")
	if err != nil {
		t.Fatalf(`Check("lux"): %v`, err)
	}
	t.Logf("Check(\"lux\"):\n%s", summary)
	for _, want := range []string{
		"lux: valid catalog of LUX Tour Spain 2026",
		"venues: 2",
		"movistar-arena    Movistar Arena    Madrid     30        17,500           17,500    4",
		"palau-sant-jordi  Palau Sant Jordi  Barcelona  26        18,000           18,000    4",
		"shows: 8",
		"lux-mad-0330  movistar-arena    2026-03-30 21:00 +02:00  LUX Tour — Madrid",
		"places in all shows: 142,000, of which 142,000 for sale (0 blocked)",
		"tiers: 5",
		"vip      VIP package         500.00",
		"grada-3  Grada alta lateral  45.00",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("Check(lux) summary lacks %q", want)
		}
	}
}

func TestCheck_blockedAndPriceRange(t *testing.T) {
	src := strings.Replace(validYAML, "rank: 1}", `rank: 1, blocked: ["1-*", "2-1"]}`, 1)
	src = strings.Replace(src, "capacity: 100", "capacity: 100, blocked_places: 10", 1)
	src = strings.Replace(src, "shows:", "  - {id: w, name: Other, tiers: [{id: t, name: Tier, price_cents: 7550}], sections: [{id: a, name: A, kind: standing, capacity: 1, tier: t}]}\nshows:", 1)
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	summary, err := catalog.Check(path)
	if err != nil {
		t.Fatalf("Check(%s): %v", path, err)
	}
	for _, want := range []string{
		"places in all shows: 300, of which 269 for sale (31 blocked)",
		"t   Tier  50.00 to 75.50",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("Check summary lacks %q:\n%s", want, summary)
		}
	}
}

func TestCheck_invalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	src := strings.Replace(validYAML, "rows: 10", "rows: 0", 1)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	summary, err := catalog.Check(path)
	want := path + ":8:45: venues[0].sections[0].rows: must be 1 to 200, got 0"
	if err == nil || err.Error() != want {
		t.Errorf("Check(invalid) error = %v, want %s", err, want)
	}
	if summary != "" {
		t.Errorf("Check(invalid) summary = %q, want empty", summary)
	}
}
