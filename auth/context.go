package auth

import (
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// identityKey is where the identity lives in echo's context store. The value
// has an unexported type, so no other package can forge one with c.Set.
const identityKey = "profilecache/auth.identity"

type identity struct {
	userID    uuid.UUID
	sessionID string
}

// WithIdentity records who the request is from. The middleware calls it after
// verifying the credential; other packages' tests call it to fake a login.
func WithIdentity(c echo.Context, userID uuid.UUID, sessionID string) {
	c.Set(identityKey, identity{userID: userID, sessionID: sessionID})
}

// UserID is the authenticated user, if the middleware let the request in.
func UserID(c echo.Context) (uuid.UUID, bool) {
	id, ok := c.Get(identityKey).(identity)
	return id.userID, ok
}

// SessionID is the public id of the request's session (see SessionIDFor), if
// the middleware let the request in.
func SessionID(c echo.Context) (string, bool) {
	id, ok := c.Get(identityKey).(identity)
	return id.sessionID, ok
}
