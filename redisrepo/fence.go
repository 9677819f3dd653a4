package redisrepo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// The fence (profile.Fence) is one short-lived string key per user,
// pc:{u:<uuid>}:fence, set whenever every session of the user ends. Its value
// is random, so that a fence read before a revocation never equals one read
// after it. Writers that began under a fence (a profile save, a session
// create) check it in the same script that writes:
//
//   - no fence key: no revocation in the last DefaultFenceTTL, commit;
//   - the same value as read when the work began: commit;
//   - anything else, or an erasure's fence at all: write nothing.
//
// The key only needs to outlive every login and reload in flight when it is
// set, so it expires after FenceTTL: the fence leaves nothing of the user
// behind for long, not even after an erasure.
const (
	fenceRevoked = "r:" // value prefix after RevokeAll
	fenceErased  = "e:" // value prefix after Erase: nothing may be saved
)

// DefaultFenceTTL is how long a fence outlives the revocation that set it
// by default. It must exceed the longest login or request (cmd derives it
// from the backend and Redis timeouts).
const DefaultFenceTTL = time.Minute

// luaFenced defines fenced(key, expected): whether a write that began under
// fence value expected must not commit. Shared by every fenced script.
var luaFenced = fmt.Sprintf(`
local function fenced(key, expected)
  local f = redis.call('GET', key)
  if not f then
    return false
  end
  return f ~= expected or string.sub(f, 1, %d) == %q
end
`, len(fenceErased), fenceErased)

// errFencedReply is the error reply of a fenced script; fencedErr turns it
// into profile.ErrFenced.
const errFencedReply = "FENCED every session of the user was ended"

func fencedErr(err error) error {
	var re *rueidis.RedisError
	if errors.As(err, &re) && strings.HasPrefix(re.Error(), "FENCED") {
		return profile.ErrFenced
	}
	return err
}

// newFence is a fence value of the given kind.
func newFence(kind string) string { return kind + rand.Text() }

// readFence returns the user's fence: the fence key's value, "" without one.
// Uncached: the point is to see a revocation made a moment ago.
func readFence(ctx context.Context, client rueidis.Client, keys keyspace, userID uuid.UUID) (profile.Fence, error) {
	v, err := client.Do(ctx, client.B().Get().Key(keys.fence(userID)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisrepo: read fence: %w", unavailable(err))
	}
	return profile.Fence(v), nil
}

// Fence implements profile.Store.
func (s *ProfileStore) Fence(ctx context.Context, userID uuid.UUID) (profile.Fence, error) {
	return readFence(ctx, s.client, s.keys, userID)
}

// sweepUser deletes the keys of the user that nothing points at any more:
// a generation whose meta was evicted, or one a failed load left behind.
// Their TTL would remove them too, but an erasure must not wait a day.
// Only the fence is kept. On a cluster it asks each node for the keys of
// the user's slot (cheap); a single server has no such index, so it SCANs
// the keyspace, which an erasure, a rare event, can afford.
func sweepUser(ctx context.Context, client rueidis.Client, keys keyspace, userID uuid.UUID) error {
	prefix, fence := keys.user(userID), keys.fence(userID)
	var slot int64 = -1
	if client.Mode() == rueidis.ClientModeCluster {
		s, err := client.Do(ctx, client.B().ClusterKeyslot().Key(fence).Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("sweep: keyslot: %w", err)
		}
		slot = s
	}
	for addr, node := range client.Nodes() {
		found, err := userKeysOn(ctx, node, slot, prefix)
		if err != nil {
			return fmt.Errorf("sweep on %s: %w", addr, err)
		}
		found = slices.DeleteFunc(found, func(k string) bool { return k == fence })
		for i := 0; i < len(found); i += sweepBatch {
			batch := found[i:min(i+sweepBatch, len(found))]
			if err := node.Do(ctx, node.B().Unlink().Key(batch...).Build()).Error(); err != nil {
				return fmt.Errorf("sweep on %s: %w", addr, err)
			}
		}
	}
	return nil
}

// sweepBatch keeps each UNLINK of a sweep as small as any other (generation.go).
const sweepBatch = batchKeys

// userKeysOn lists the keys starting with prefix on one node: from the
// slot's key index on a cluster node (slot >= 0; other nodes have none of
// the slot's keys), by SCAN MATCH otherwise.
func userKeysOn(ctx context.Context, node rueidis.Client, slot int64, prefix string) ([]string, error) {
	if slot < 0 {
		return scanPrefix(ctx, node, prefix)
	}
	n, err := node.Do(ctx, node.B().ClusterCountkeysinslot().Slot(slot).Build()).AsInt64()
	if err != nil || n == 0 {
		return nil, err
	}
	ks, err := node.Do(ctx, node.B().ClusterGetkeysinslot().Slot(slot).Count(n).Build()).AsStrSlice()
	if err != nil {
		return nil, err
	}
	// The slot is shared with other users.
	return slices.DeleteFunc(ks, func(k string) bool { return !strings.HasPrefix(k, prefix) }), nil
}

func scanPrefix(ctx context.Context, node rueidis.Client, prefix string) ([]string, error) {
	var out []string
	pattern := globEscape(prefix) + "*"
	for cursor := uint64(0); ; {
		e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return nil, err
		}
		out = append(out, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return out, nil
		}
	}
}

// globEscape quotes the glob characters of a key prefix for SCAN MATCH:
// the hash tag's braces are literal, and so is anything in the prefix.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
