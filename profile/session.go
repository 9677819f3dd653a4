package profile

import (
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
}

// Limits of the per-session key/value data (a cart, a wizard's step).
const (
	MaxDataKeyBytes   = 128
	MaxDataValueBytes = 64 << 10
	MaxDataKeys       = 64
)

// ErrDataFull: the session already holds MaxDataKeys keys. Maps to 409.
var ErrDataFull = errors.New("session data is full")
