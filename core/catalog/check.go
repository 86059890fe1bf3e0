package catalog

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Check loads and validates the catalog at path, or the built-in catalog
// named lux or smoke, and returns a summary for a person to read. The
// summary lists the venues with their places per show, the shows, the
// places of all shows with the number for sale, and the tiers with their
// price ranges. On failure the error is the one of Load, which lists every
// problem with its line.
func Check(path string) (summary string, err error) {
	c, err := Load(path)
	if err != nil {
		return "", err
	}
	return summarize(path, c), nil
}

// summarize formats the summary that Check returns.
func summarize(name string, c *Catalog) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: valid catalog of %s\n", name, c.Tour)

	// Venues, with the places of one show and the shows that use them.
	showsAt := map[string]int{}
	for _, s := range c.Shows {
		showsAt[s.Venue]++
	}
	fmt.Fprintf(&b, "\nvenues: %d\n", len(c.Venues))
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  id\tname\tcity\tsections\tplaces per show\tfor sale\tshows")
	for _, v := range c.Venues {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\t%s\t%d\n", v.ID, v.Name, v.City, len(v.Sections),
			formatCount(v.Capacity()), formatCount(v.SellableCapacity()), showsAt[v.ID])
	}
	w.Flush()

	// Shows, and the places of all shows together.
	places, sellable := 0, 0
	fmt.Fprintf(&b, "\nshows: %d\n", len(c.Shows))
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  id\tvenue\tstarts at\tname")
	for _, s := range c.Shows {
		if v := c.Venue(s.Venue); v != nil {
			places += v.Capacity()
			sellable += v.SellableCapacity()
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", s.ID, s.Venue, s.StartsAt.Format("2006-01-02 15:04 -07:00"), s.Name)
	}
	w.Flush()
	fmt.Fprintf(&b, "\nplaces in all shows: %s, of which %s for sale (%s blocked)\n",
		formatCount(places), formatCount(sellable), formatCount(places-sellable))

	// Tiers by id over all venues, in the order they first appear. The
	// same id may have another price at another venue.
	type priceRange struct {
		name     string
		low, top int64
	}
	var ids []string
	tiers := map[string]*priceRange{}
	for _, v := range c.Venues {
		for _, t := range v.Tiers {
			r, ok := tiers[t.ID]
			if !ok {
				tiers[t.ID] = &priceRange{name: t.Name, low: t.PriceCents, top: t.PriceCents}
				ids = append(ids, t.ID)
				continue
			}
			r.low, r.top = min(r.low, t.PriceCents), max(r.top, t.PriceCents)
		}
	}
	fmt.Fprintf(&b, "\ntiers: %d (prices are price_cents / 100)\n", len(ids))
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  id\tname\tprice")
	for _, id := range ids {
		r := tiers[id]
		price := formatCents(r.low)
		if r.top != r.low {
			price += " to " + formatCents(r.top)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", id, r.name, price)
	}
	w.Flush()
	return b.String()
}

// formatCount formats n with a comma between groups of three digits.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatCents formats an amount in cents as units with two decimals.
func formatCents(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}
