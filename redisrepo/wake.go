package redisrepo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// Waiting without polling (issue 12). A request that must wait for a
// reload another request or instance runs reads the lock key through the
// client-side cache, which subscribes this connection to the key's
// invalidation: Redis tells us the moment the key is deleted (released) or
// expires, and Wakeups hands that message to the waiter. A waiter thus
// sends one command per wake-up, not one every 20 ms, and runs within the
// invalidation's delivery time of the release.

// Wakeups passes the keys Redis invalidates to the waiters registered for
// them. Give OnInvalidations to the client (WithWakeups) and the Wakeups to
// the ProfileStore (ProfileOptions.Wakeups). Safe for concurrent use.
type Wakeups struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// NewWakeups returns an empty Wakeups.
func NewWakeups() *Wakeups {
	return &Wakeups{waiters: map[string]map[chan struct{}]struct{}{}}
}

// WithWakeups makes NewClient deliver invalidations to w. rueidis allows
// one such callback per client.
func WithWakeups(w *Wakeups) Option {
	return func(o *options) { o.wakeups = w }
}

// OnInvalidations is rueidis's ClientOption.OnInvalidations: it runs on the
// connection's reading goroutine, so it only signals. A nil message means
// the connection was reset or the server flushed: every waiter is woken,
// to look again.
func (w *Wakeups) OnInvalidations(msgs []rueidis.RedisMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiters) == 0 {
		return
	}
	if msgs == nil {
		for _, chs := range w.waiters {
			signalAll(chs)
		}
		return
	}
	for _, m := range msgs {
		if k, err := m.ToString(); err == nil {
			signalAll(w.waiters[k])
		}
	}
}

func signalAll(chs map[chan struct{}]struct{}) {
	for ch := range chs {
		select {
		case ch <- struct{}{}:
		default: // already signalled
		}
	}
}

// register returns a channel that receives when key is invalidated, and
// the function that unregisters it.
func (w *Wakeups) register(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters[key] == nil {
		w.waiters[key] = map[chan struct{}]struct{}{}
	}
	w.waiters[key][ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.waiters[key], ch)
		if len(w.waiters[key]) == 0 {
			delete(w.waiters, key)
		}
	}
}

// Waiters is how many waiters are registered (for tests).
func (w *Wakeups) Waiters() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, chs := range w.waiters {
		n += len(chs)
	}
	return n
}

// pollInterval is how often a waiter without Wakeups looks at the lock.
const pollInterval = 20 * time.Millisecond

// lockCacheTTL bounds how long a lock value stays in the client-side cache;
// the lock's own TTL is shorter in practice.
const lockCacheTTL = time.Minute

// WaitUnlocked returns once nobody holds the user's reload lock, or ctx
// ends: woken by the lock key's invalidation when the store has Wakeups,
// by polling otherwise. It implements profile.LockWaiter.
func (s *ProfileStore) WaitUnlocked(ctx context.Context, userID uuid.UUID) error {
	return s.waitKey(ctx, s.keys.lock(userID))
}

// waitKey returns once key does not exist, or ctx ends.
//
// It registers for the key's invalidation before it reads the key through
// the cache: rueidis drops a cached entry before it calls OnInvalidations,
// so a release either shows in the read or wakes the waiter, never
// neither. A timer at the lock's remaining TTL covers an expiry that Redis
// reports late.
func (s *ProfileStore) waitKey(ctx context.Context, key string) error {
	if s.wake == nil {
		return s.pollKey(ctx, key)
	}
	wake, unregister := s.wake.register(key)
	defer unregister()
	for {
		r := s.client.DoCache(ctx, s.client.B().Get().Key(key).Cache(), lockCacheTTL)
		err := r.Error()
		if rueidis.IsRedisNil(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("redisrepo: wait for lock: %w", err)
		}
		fallback := lockCacheTTL
		if ms := r.CachePTTL(); ms > 0 {
			fallback = time.Duration(ms) * time.Millisecond
		}
		t := time.NewTimer(fallback)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redisrepo: wait for lock: %w", ctx.Err())
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// pollKey looks whether key exists every pollInterval: the embedded
// server has no client-side caching, hence no invalidations.
func (s *ProfileStore) pollKey(ctx context.Context, key string) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		n, err := s.client.Do(ctx, s.client.B().Exists().Key(key).Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("redisrepo: wait for lock: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisrepo: wait for lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}
