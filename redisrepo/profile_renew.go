package redisrepo

import (
	"context"
	"strconv"

	"github.com/google/uuid"
)

// maybeRenew renews the TTL of generation m once half of it has passed
// since the last renewal ("PROFILE_TTL is renewed when the profile is
// read"). Renewing touches every key of the generation (10k for a big
// profile), which is why it is not done on every read, and why it runs in
// bounded batches (generation.go): renewScript claims the renewal in O(1),
// which makes other instances' renewals of the generation no-ops, then
// pexpireGen extends the keys. Concurrent readers of one user in this
// process share one renewal. A failure only costs an earlier reload, so it
// is logged, not returned.
func (s *ProfileStore) maybeRenew(ctx context.Context, uid uuid.UUID, m meta) {
	if s.noRenew {
		return
	}
	now := s.now().UnixMilli()
	half := s.ttl.Milliseconds() / 2
	if now-m.renewed <= half {
		return
	}
	_, err, _ := s.renewals.Do(uid.String()+"/"+m.gen, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		ttl := s.ttl.Milliseconds()
		claimed, err := renewScript.Exec(ctx, s.client, []string{s.keys.meta(uid)}, []string{
			m.gen,
			strconv.FormatInt(ttl, 10),
			strconv.FormatInt(now, 10),
			strconv.FormatInt(now-half, 10),
		}).AsInt64()
		if err != nil || claimed == 0 {
			return nil, err
		}
		// Meta is renewed already: should this stop halfway, the keys it
		// missed expire first, and reads then find the profile missing and
		// reload it. Never a mix: PEXPIRE does not create keys.
		return nil, pexpireGen(ctx, s.client, s.keys, uid, m.gen, ttl)
	})
	if err != nil {
		s.log.WarnContext(ctx, "redisrepo: renew profile TTL", "user", uid, "gen", m.gen, "err", err)
	}
}
