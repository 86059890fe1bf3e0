package ratelimit

import (
	"sync"

	"golang.org/x/time/rate"
)

// shard is one part of a Table: a map of buckets and a list of the same
// buckets from most to least recently used. The list makes eviction O(1)
// when the shard is full, so a flood of new addresses costs constant work
// per request, and lets Sweep stop at the first bucket still in use.
type shard struct {
	mu sync.Mutex // guards entries, the list links of every entry, and head
	// entries maps a key to its bucket.
	entries map[bucketKey]*entry
	// head is the sentinel of a circular doubly linked list. head.next is
	// the most recently used entry and head.prev the least.
	head entry
	// capacity is the maximum len(entries). It is set by init and never changes.
	capacity int
}

// entry is one token bucket and its place in the shard's list.
type entry struct {
	key        bucketKey
	limiter    *rate.Limiter
	lastUsed   int64 // Unix nanoseconds of the last touch
	prev, next *entry
}

func (s *shard) init(capacity int) {
	s.entries = make(map[bucketKey]*entry)
	s.head.prev = &s.head
	s.head.next = &s.head
	s.capacity = capacity
}

// touch returns the entry for key, creating it with a full bucket if needed,
// and marks it as the most recently used. When the shard is full it first
// evicts the least recently used entry. s.mu must be held.
func (s *shard) touch(key bucketKey, now int64, perSecond float64, burst int) *entry {
	e, ok := s.entries[key]
	if ok {
		s.unlink(e)
	} else {
		if len(s.entries) >= s.capacity {
			s.remove(s.head.prev)
		}
		e = &entry{key: key, limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
		s.entries[key] = e
	}

	e.lastUsed = now
	s.pushFront(e)
	return e
}

// evictIdle removes the entries last used at or before cutoff (Unix
// nanoseconds) and returns how many it removed. It walks from the least
// recently used end and stops at the first entry used after cutoff. An entry touched with
// an earlier now than its neighbours can therefore stay until a later sweep.
func (s *shard) evictIdle(cutoff int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()

	evicted := 0
	for len(s.entries) > 0 && s.head.prev.lastUsed <= cutoff {
		s.remove(s.head.prev)
		evicted++
	}
	return evicted
}

// remove deletes e from the map and the list. s.mu must be held.
func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.entries, e.key)
}

// unlink takes e out of the list. s.mu must be held.
func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

// pushFront puts e at the most recently used end. s.mu must be held.
func (s *shard) pushFront(e *entry) {
	e.prev = &s.head
	e.next = s.head.next
	s.head.next.prev = e
	s.head.next = e
}
