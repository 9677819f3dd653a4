package redisrepo

import (
	"sync"
	"time"
)

// Revocations on this instance must take effect at once, but a rueidis
// client can read its own write back stale from its cache for a few ms
// (TECH-NOTES §2: Redis sends the invalidation for our own DEL after the
// DEL's reply). So Revoke also notes the session here, and Lookup checks
// here first. Other instances learn of a revocation through invalidation.
const (
	// revokedWindow covers the stale window (max 16 ms measured) with a
	// wide margin for a loaded or -race box.
	revokedWindow = 5 * time.Second
	// revokedMax bounds memory under a revocation storm.
	revokedMax = 100_000
)

// revokedSet is a small map of recently revoked session ids. It uses the
// wall clock, not the store's injectable Now: it bounds a network race.
type revokedSet struct {
	mu    sync.Mutex
	m     map[string]time.Time // session id -> when its entry lapses
	swept time.Time            // last sweep of lapsed entries
}

func (r *revokedSet) add(ids ...string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]time.Time)
	}
	if now.Sub(r.swept) > revokedWindow {
		for id, until := range r.m {
			if now.After(until) {
				delete(r.m, id)
			}
		}
		r.swept = now
	}
	// Under a revocation storm drop arbitrary entries: a dropped entry only
	// reopens the few-ms stale window.
	for id := range r.m {
		if len(r.m)+len(ids) <= revokedMax {
			break
		}
		delete(r.m, id)
	}
	for _, id := range ids {
		r.m[id] = now.Add(revokedWindow)
	}
}

func (r *revokedSet) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.m[id]
	if !ok {
		return false
	}
	if time.Now().After(until) {
		delete(r.m, id)
		return false
	}
	return true
}

// forget drops id, for a session created (again) under that id.
func (r *revokedSet) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}
