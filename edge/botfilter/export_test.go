package botfilter

// SetMaxSpent changes how many spent challenges p remembers, so tests can
// fill the set.
func SetMaxSpent(p *PoW, n int) {
	p.spent.mu.Lock()
	defer p.spent.mu.Unlock()
	p.spent.capacity = n
}
