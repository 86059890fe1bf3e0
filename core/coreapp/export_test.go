package coreapp

// Crash stops the core's background work at once, the way a killed process
// stops: no service is unregistered and nothing is waited for.
func (c *Core) Crash() {
	c.cancel()
	for _, f := range c.followers {
		go f.Close()
	}
}

// HoldsLease reports whether this core holds the admission lease of a sale,
// so that its controller admits.
func (c *Core) HoldsLease(saleID string) bool {
	c.mu.Lock()
	ctl := c.controllers[saleID]
	c.mu.Unlock()
	return ctl != nil && ctl.Gate != nil && ctl.Gate.Held()
}
