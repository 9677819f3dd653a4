package auth

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// Decoding and verifying a JWT (two base64 segments, two JSON documents, an
// HMAC) was a third of the CPU of a hot authenticated request
// (BenchmarkRequest in cmd/profilecache, pprof). Its outcome depends only on
// the JWT's bytes, the keys and the clock, so it is computed once per JWT
// and remembered: a later request with the very same bytes only has to
// compare the clock with the remembered expiry. The cache is a shortcut for
// the signature and claims check only; revocation is still asked of the
// store on every request. Only JWTs that passed the full check get in, so a
// client cannot fill the cache without our secret.

// maxVerified bounds the cache: about 0.5 KB per entry, so at most ~5 MB.
const maxVerified = 10_000

// verifiedJWT is what a JWT that passed the full check says.
type verifiedJWT struct {
	userID    uuid.UUID
	subject   string
	sessionID string    // SessionIDFor(claims.SID)
	expires   time.Time // the exp claim: the entry is void from then on
}

// verifiedCache maps the exact bytes of verified JWTs to their claims.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[string]verifiedJWT
}

// get returns the claims of raw if it was verified before and has not
// expired at now.
func (c *verifiedCache) get(raw string, now time.Time) (verifiedJWT, bool) {
	c.mu.RLock()
	v, ok := c.m[raw]
	c.mu.RUnlock()
	if !ok {
		return verifiedJWT{}, false
	}
	if !now.Before(v.expires) { // as jwt's exp check, without leeway
		c.mu.Lock()
		delete(c.m, raw)
		c.mu.Unlock()
		return verifiedJWT{}, false
	}
	return v, true
}

// put remembers a JWT that has just passed the full check.
func (c *verifiedCache) put(raw string, v verifiedJWT) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verifiedJWT)
	}
	// Full: drop an arbitrary entry (map order is random). A dropped JWT
	// is only verified in full again.
	for k := range c.m {
		if len(c.m) < maxVerified {
			break
		}
		delete(c.m, k)
	}
	c.m[raw] = v
}
