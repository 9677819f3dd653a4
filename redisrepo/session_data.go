package redisrepo

import (
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Session data is one hash per session whose TTL follows the token's. It is
// read uncached: a client may read its own write back stale from its cache,
// and a wizard's next step must see the previous one.

// GetData returns the value stored under key, or an error wrapping
// profile.ErrNotFound. Values are arbitrary bytes.
func (t *TokenStore) GetData(ctx context.Context, userID uuid.UUID, sessionID, key string) ([]byte, error) {
	v, err := t.client.Do(ctx, t.client.B().Hget().Key(t.keys.sessionData(userID, sessionID)).Field(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("redisrepo: get session data: %w", profile.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisrepo: get session data: %w", unavailable(err))
	}
	return v, nil
}

// PutData stores value under key for as long as the session lives. A gone
// session gives an error wrapping profile.ErrNotFound; a new key beyond
// profile.MaxDataKeys gives profile.ErrDataFull; data that would exceed the
// session's byte budget (MaxDataBytes: key plus value bytes of all entries)
// gives a *profile.DataBudgetError, which wraps profile.ErrDataBudget. In
// every refusal nothing is written. The web layer validates sizes; the
// check here is only a backstop.
func (t *TokenStore) PutData(ctx context.Context, userID uuid.UUID, sessionID, key string, value []byte) error {
	if err := checkSessionID(userID, sessionID); err != nil {
		return fmt.Errorf("redisrepo: put session data: %w", err)
	}
	if key == "" || len(key) > profile.MaxDataKeyBytes || len(value) > profile.MaxDataValueBytes {
		return fmt.Errorf("redisrepo: put session data: key of %d bytes or value of %d bytes out of bounds", len(key), len(value))
	}
	if len(key)+len(value) > t.maxDataBytes {
		return t.errDataBudget() // alone over it: no need to ask Redis
	}
	n, err := putDataScript.Exec(ctx, t.client,
		[]string{t.keys.session(userID, sessionID), t.keys.sessionData(userID, sessionID)},
		[]string{key, string(value), strconv.Itoa(profile.MaxDataKeys), strconv.Itoa(t.maxDataBytes)},
	).AsInt64()
	switch {
	case err != nil:
		return fmt.Errorf("redisrepo: put session data: %w", unavailable(err))
	case n == 0:
		return fmt.Errorf("redisrepo: put session data: session: %w", profile.ErrNotFound)
	case n == -1:
		return fmt.Errorf("redisrepo: put session data: %w", profile.ErrDataFull)
	case n == -2:
		return t.errDataBudget()
	case n != 1:
		return fmt.Errorf("redisrepo: put session data: unexpected reply %d", n)
	}
	return nil
}

func (t *TokenStore) errDataBudget() error {
	return fmt.Errorf("redisrepo: put session data: %w", &profile.DataBudgetError{Budget: t.maxDataBytes})
}

// DeleteData removes key; a missing key or session is not an error.
func (t *TokenStore) DeleteData(ctx context.Context, userID uuid.UUID, sessionID, key string) error {
	err := t.client.Do(ctx, t.client.B().Hdel().Key(t.keys.sessionData(userID, sessionID)).Field(key).Build()).Error()
	if err != nil {
		return fmt.Errorf("redisrepo: delete session data: %w", unavailable(err))
	}
	return nil
}
