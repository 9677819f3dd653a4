package redisrepo

import (
	"context"
	"strconv"

	"github.com/google/uuid"
)

// maybeRenew renews the TTL of generation m once half of it has passed
// since the last renewal ("PROFILE_TTL is renewed when the profile is
// read"). Renewing touches every key of the generation (10k for a big
// profile), which is why it is not done on every read. Concurrent readers of
// one user in this process share one renewal; renewScript makes other
// instances' renewals no-ops. A failure only costs an earlier reload, so it
// is logged, not returned.
func (s *ProfileStore) maybeRenew(ctx context.Context, uid uuid.UUID, m meta) {
	now := s.now().UnixMilli()
	half := s.ttl.Milliseconds() / 2
	if now-m.renewed <= half {
		return
	}
	_, err, _ := s.renewals.Do(uid.String()+"/"+m.gen, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		return nil, renewScript.Exec(ctx, s.client, []string{s.keys.meta(uid)}, []string{
			s.keys.user(uid),
			m.gen,
			strconv.FormatInt(s.ttl.Milliseconds(), 10),
			strconv.FormatInt(now, 10),
			strconv.FormatInt(now-half, 10),
		}).Error()
	})
	if err != nil {
		s.log.WarnContext(ctx, "redisrepo: renew profile TTL", "user", uid, "gen", m.gen, "err", err)
	}
}
