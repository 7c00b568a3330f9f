package quality

// Lattices returns how many lattices c has built.
func (c *IndicatorCache) Lattices() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lattices
}
