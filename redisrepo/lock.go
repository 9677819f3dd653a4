package redisrepo

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// TryLock takes the user's reload lock for ttl (at least 1 ms): SET NX PX
// with a random owner token. release deletes the lock only while it still
// holds that token, so a holder whose lock expired cannot free a
// successor's; releasing a lock that is no longer ours is not an error.
func (s *ProfileStore) TryLock(ctx context.Context, userID uuid.UUID, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, false, fmt.Errorf("redisrepo: lock profile: %w", err)
	}
	key := s.keys.lock(userID)
	owner := rand.Text()
	err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(owner).Nx().PxMilliseconds(ttl.Milliseconds()).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisrepo: lock profile: %w", err)
	}
	release := func(ctx context.Context) error {
		if err := unlockScript.Exec(ctx, s.client, []string{key}, []string{owner}).Error(); err != nil {
			return fmt.Errorf("redisrepo: unlock profile: %w", err)
		}
		return nil
	}
	return release, true, nil
}

// Locked reports whether anyone holds the user's reload lock. It asks Redis
// every time: waiters poll it and must see the release.
func (s *ProfileStore) Locked(ctx context.Context, userID uuid.UUID) (bool, error) {
	n, err := s.client.Do(ctx, s.client.B().Exists().Key(s.keys.lock(userID)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redisrepo: check profile lock: %w", err)
	}
	return n > 0, nil
}
