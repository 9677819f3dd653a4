package crm

import "time"

// Backoff opens the retry wait to the external tests.
func (c *Client) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	return c.backoff(attempt, retryAfter)
}
