package profile

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Session is the server-side record of one login. The random token that
// proves it travels only inside the signed JWT; stores and listings see ID,
// a one-way hash of the token, so a leaked listing or Redis dump cannot be
// replayed.
type Session struct {
	ID        string
	UserID    uuid.UUID
	Created   time.Time
	LastSeen  time.Time
	UserAgent string
	// Fence is the user's Fence as read when the login began. A store
	// refuses to create the session (ErrFenced) once it has moved: a login
	// in flight does not survive a logout-all or an erasure.
	Fence Fence
}

// Accounts ends a user's sessions on the system of record's word.
// Implemented by redisrepo.TokenStore. Both raise the user's Fence in the
// same atomic step.
type Accounts interface {
	// RevokeAll ends every session of the user and says how many were live.
	RevokeAll(ctx context.Context, userID uuid.UUID) (int, error)
	// Erase deletes every key of the user: profile, sessions and their data.
	Erase(ctx context.Context, userID uuid.UUID) error
}

// Limits of the per-session key/value data (a cart, a wizard's step).
const (
	MaxDataKeyBytes   = 128
	MaxDataValueBytes = 64 << 10
	MaxDataKeys       = 64
)

// ErrDataFull: the session already holds MaxDataKeys keys. Maps to 409.
var ErrDataFull = errors.New("session data is full")
