package redisrepo

import (
	"context"
	"strconv"

	"github.com/google/uuid"
)

// maybeRenew renews the TTL of the profile's generations once half of it
// has passed since the last renewal ("PROFILE_TTL is renewed when the
// profile is read"). Renewing touches every key of a generation (10k for a
// big profile), which is why it is not done on every read, and why it runs
// in bounded batches (generation.go): renewScript claims the renewal in
// O(1), which makes other instances' renewals no-ops, and names the
// generations meta points at now; then pexpireGen extends their keys.
// Concurrent readers of one user in this process share one renewal. A
// failure only costs an earlier reload, so it is logged, not returned.
func (s *ProfileStore) maybeRenew(ctx context.Context, uid uuid.UUID, m meta) {
	if s.noRenew {
		return
	}
	now := s.now().UnixMilli()
	half := s.ttl.Milliseconds() / 2
	if now-m.renewed <= half {
		return
	}
	_, err, _ := s.renewals.Do(uid.String(), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		ttl := s.ttl.Milliseconds()
		gens, err := renewScript.Exec(ctx, s.client, []string{s.keys.meta(uid)}, []string{
			strconv.FormatInt(ttl, 10),
			strconv.FormatInt(now, 10),
			strconv.FormatInt(now-half, 10),
		}).AsStrSlice()
		if err != nil {
			return nil, err
		}
		// Meta is renewed already: should this stop halfway, the keys it
		// missed expire first, and reads then find the profile missing and
		// reload it. Never a mix: PEXPIRE does not create keys.
		for _, g := range gens {
			if err := pexpireGen(ctx, s.client, s.keys, uid, g, ttl); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "redisrepo: renew profile TTL", "user", uid, "err", err)
	}
}
