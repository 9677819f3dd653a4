package auth

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// TokenStore keeps the server-side record of every session. Implementations:
// redisrepo.TokenStore. Session ids are already hashed when they get here.
//
// Not-found contract: a missing, expired or revoked session is an error
// wrapping profile.ErrNotFound; any other error is a system error (Redis
// down, timeout) and must not be taken for a logout.
type TokenStore interface {
	// Create stores s with an idle expiry of ttl and adds it to the user's
	// session index.
	Create(ctx context.Context, s profile.Session, ttl time.Duration) error
	// Lookup returns the session, or ErrNotFound.
	Lookup(ctx context.Context, userID uuid.UUID, sessionID string) (profile.Session, error)
	// Touch records activity and slides the expiry to ttl. It never
	// recreates a session that is gone.
	Touch(ctx context.Context, userID uuid.UUID, sessionID string, seen time.Time, ttl time.Duration) error
	// Revoke ends one session and its data; revoking a missing one is a no-op.
	Revoke(ctx context.Context, userID uuid.UUID, sessionID string) error
	// RevokeAll ends every session of the user and says how many there were.
	RevokeAll(ctx context.Context, userID uuid.UUID) (int, error)
	// List returns the user's live sessions, most recently seen first.
	List(ctx context.Context, userID uuid.UUID) ([]profile.Session, error)
}
