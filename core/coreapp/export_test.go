package coreapp

// Crash stops the core's background work at once, the way a killed process
// stops: no service is unregistered and nothing is waited for.
func (c *Core) Crash() {
	c.cancel()
	for _, f := range c.followers {
		go f.Close()
	}
}
