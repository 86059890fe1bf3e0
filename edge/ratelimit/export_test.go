package ratelimit

// NewWithShards returns a Table split into the given number of shards, so
// benchmarks can compare shard counts.
func NewWithShards(cfg Config, shards int) *Table {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return newTable(cfg, shards)
}
