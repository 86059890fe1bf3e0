package wire

import "time"

// StockBucket is the JetStream KV bucket where the core publishes what is
// left of each on-sale, keyed by sale id, so edges can tell waiting fans
// whether their turn is likely to come before the show sells out.
const StockBucket = "TAQ_STOCK"

// Stock is the number of places left in one on-sale, in total and per tier.
type Stock struct {
	V         int    `json:"v"`
	Sale      string `json:"sale"`
	Name      string `json:"name"`
	Available int    `json:"available"`
	// Tiers lists what is left per price tier, dearest first.
	Tiers []TierStock `json:"tiers"`
	// PlacesPerFan is how many places a fan is expected to buy, for the
	// likely-sold-out estimate.
	PlacesPerFan float64   `json:"places_per_fan"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// TierStock is the number of places left in one price tier.
type TierStock struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Available  int    `json:"available"`
}

// SaleChoice names another show that still has places, for a fan who will
// probably not get in to the one they wait for.
type SaleChoice struct {
	Sale      string `json:"sale"`
	Name      string `json:"name"`
	Available int    `json:"available"`
}
