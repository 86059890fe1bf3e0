package botfilter

import "sync"

// DefaultMaxSpent is the number of spent challenges a PoW remembers. Each
// takes about 56 bytes of heap (measured on linux/amd64 with Go 1.26), so a
// full set takes about 110 MB. Filling it needs that many solved challenges
// within one ttl.
const DefaultMaxSpent = 2_000_000

// purgeInterval is the minimum time in milliseconds between two scans of a
// full set. A scan is O(len), so this bounds the work a flood of spends can
// cause once the set is full.
const purgeInterval = 1000

// spentID names a spent challenge: the first 16 bytes of its tag.
type spentID [16]byte

// spentSet remembers spent challenges until they expire.
type spentSet struct {
	mu sync.Mutex // guards expires and lastPurge
	// expires maps a spent challenge to its expiry in Unix milliseconds.
	expires map[spentID]int64
	// lastPurge is when expired entries were last removed, in Unix milliseconds.
	lastPurge int64
	// capacity is the maximum len(expires).
	capacity int
}

func newSpentSet(capacity int) spentSet {
	return spentSet{expires: make(map[spentID]int64), capacity: capacity}
}

// spend records id as spent until expires. It returns ErrChallengeUsed if id
// is already recorded, and ErrSpentSetFull if the set is full of unexpired
// challenges, so a replay is never accepted for lack of room. Times are Unix
// milliseconds.
func (s *spentSet) spend(id spentID, expires, now int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if _, ok := s.expires[id]; ok {
		return ErrChallengeUsed
	}

	// Expired entries stay until the set is full, and then a purge runs at
	// most once per purgeInterval.
	full := len(s.expires) >= s.capacity
	if full && now-s.lastPurge >= purgeInterval {
		s.purge(now)
		full = len(s.expires) >= s.capacity
	}
	if full {
		return ErrSpentSetFull
	}

	s.expires[id] = expires
	return nil
}

// purge removes the entries that expired at or before now. s.mu must be held.
func (s *spentSet) purge(now int64) {
	for id, expires := range s.expires {
		if expires <= now {
			delete(s.expires, id)
		}
	}
	s.lastPurge = now
}
