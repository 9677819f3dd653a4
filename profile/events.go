package profile

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Event types: what happened to a session or a cached profile, told to
// other systems (docs/events.md).
const (
	EventSessionCreated     = "session.created"
	EventSessionRevoked     = "session.revoked"
	EventSessionTimedOut    = "session.timed_out"
	EventProfileReloaded    = "profile.reloaded"
	EventProfileInvalidated = "profile.invalidated"
)

// Event reasons. A revocation says who ended the session, a timeout which
// limit it reached, a reload what asked for it, an invalidation why the
// profile was dropped.
const (
	ReasonLogout             = "logout"              // the user signed out of this session
	ReasonRevoke             = "revoke"              // the user ended one of their sessions
	ReasonLogoutAll          = "logout_all"          // the user signed out everywhere
	ReasonLimit              = "limit"               // MAX_SESSIONS_PER_USER: a new login pushed it out
	ReasonCredentialsChanged = "credentials_changed" // the CRM said so
	ReasonErased             = "erased"              // the CRM erased the user
	ReasonIdle               = "idle"                // TOKEN_TTL without a request
	ReasonAbsolute           = "absolute"            // SESSION_MAX_AGE reached
	ReasonLogin              = "login"               // a login preloaded the profile
	ReasonMiss               = "miss"                // a read found it missing or expired
	ReasonRefresh            = "refresh"             // POST /api/me/refresh
	ReasonProfileChanged     = "profile_changed"     // the CRM's webhook
	ReasonInvalidate         = "invalidate"          // Service.Invalidate
	ReasonStale              = "stale"               // one section past (or near) its PROFILE_FRESH window
)

// Event is one thing that happened. It names the user and the public
// session id (auth.SessionIDFor), never a token, an email or an address.
type Event struct {
	Type      string
	Reason    string
	UserID    uuid.UUID
	SessionID string // session events only
	// Duration is how long the backend load of a profile.reloaded took.
	Duration time.Duration
	// Section is the one section a profile.reloaded with ReasonStale
	// reloaded (Section.String); empty for a whole profile.
	Section string

	// Filled in by the recorder, not by the emitter.
	ID       string    // the stream entry id: unique, the webhook-id
	Time     time.Time // when it was recorded, ms precision
	Instance string    // which instance recorded it (INSTANCE_ID)
}

// Events records events. Emit never fails its caller: what has happened
// has happened, so an implementation that cannot record an event logs and
// counts the loss instead. Implemented by redisrepo.EventStream.
// Events of one call are emitted together, in the order they happened.
type Events interface {
	Emit(ctx context.Context, events ...Event)
}

// NoEvents records nothing: the default.
type NoEvents struct{}

// Emit does nothing.
func (NoEvents) Emit(context.Context, ...Event) {}

// EventTimeFormat is an event's time: RFC 3339, UTC, milliseconds.
const EventTimeFormat = "2006-01-02T15:04:05.000Z07:00"

type reasonKey struct{}

// WithReason tells the session store, through ctx, why the sessions the
// call ends are ended (a Reason* constant), and the service why a profile
// is reloaded. The call itself is the same whatever the reason; only the
// events it records differ.
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// ReasonFrom is the reason WithReason put into ctx, or def.
func ReasonFrom(ctx context.Context, def string) string {
	if r, ok := ctx.Value(reasonKey{}).(string); ok && r != "" {
		return r
	}
	return def
}
