package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// source says where a request's credential came from.
type source uint8

const (
	sourceNone source = iota
	sourceBearer
	sourceCookie
)

func (s source) String() string {
	switch s {
	case sourceBearer:
		return "bearer"
	case sourceCookie:
		return "cookie"
	}
	return "none"
}

// rejection is one reason to turn a request away. The errors are built once:
// rejecting is the common path for anonymous traffic and attacks alike.
type rejection struct {
	err    error
	reason string
	level  slog.Level // Info for what looks like tampering, Debug for the everyday
}

func newRejection(level slog.Level, reason string) rejection {
	return rejection{err: fmt.Errorf("%w: %s", ErrUnauthenticated, reason), reason: reason, level: level}
}

var (
	rejNoCredential    = newRejection(slog.LevelDebug, "no credential")
	rejBadHeader       = newRejection(slog.LevelInfo, "malformed Authorization header")
	rejTooLong         = newRejection(slog.LevelInfo, "credential too long")
	rejMalformed       = newRejection(slog.LevelInfo, "malformed token")
	rejSignature       = newRejection(slog.LevelInfo, "invalid token signature or algorithm")
	rejUnknownKey      = newRejection(slog.LevelInfo, "token signed with an unknown key")
	rejExpired         = newRejection(slog.LevelDebug, "token expired")
	rejMissingClaim    = newRejection(slog.LevelInfo, "token misses a required claim")
	rejIssuer          = newRejection(slog.LevelInfo, "token has a wrong issuer")
	rejClaims          = newRejection(slog.LevelInfo, "token has invalid claims")
	rejSubject         = newRejection(slog.LevelInfo, "token subject is not a user id")
	rejNoSession       = newRejection(slog.LevelInfo, "token has no session")
	rejRevoked         = newRejection(slog.LevelDebug, "session revoked or expired")
	rejWrongUser       = newRejection(slog.LevelInfo, "session belongs to another user")
	rejIdle            = newRejection(slog.LevelDebug, "session idle timeout")
	rejAbsoluteTimeout = newRejection(slog.LevelDebug, "session reached its maximum age")
)

// errUnknownKey comes out of keyFunc for a kid that none of our keys has.
var errUnknownKey = errors.New("unknown key id")

// Middleware requires an authenticated session. The credential is the
// Authorization: Bearer header when the request has one (an explicit
// credential wins; a malformed header is a failure, not a fallback),
// otherwise the session cookie. On success it records the identity
// (UserID, SessionID) and slides the session's idle expiry.
//
// Failures are returned, not written: an error wrapping ErrUnauthenticated
// (after clearing a bad cookie), or one wrapping profile.ErrUnavailable when
// the store does not answer.
func (m *Manager) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			id, src, err := m.verify(req.Context(), req)
			if src != sourceBearer {
				// What the response says depends on the cookie; shared caches
				// must know. A Bearer request ignores cookies, and caches do
				// not share answers to requests with an Authorization header.
				addHeaderValue(c.Response().Header(), "Vary", "Cookie")
			}
			if err != nil {
				if src == sourceCookie && errors.Is(err, ErrUnauthenticated) {
					m.ClearCookie(c) // so that the browser stops sending it
				}
				return err
			}
			WithIdentity(c, id.UserID, id.SessionID)
			return next(c)
		}
	}
}

// Identity is who a verified request is from.
type Identity struct {
	UserID uuid.UUID
	// SessionID is the public id of the session (SessionIDFor), as listed
	// and revoked; never a credential.
	SessionID string
}

// Verify checks r's credential exactly as Middleware does (signature,
// expiry, the session in the store, its owner, idle and absolute timeouts)
// and slides the session's idle expiry, unless the Manager is ReadOnly. It
// writes nothing to any response: it is the net/http face of Middleware,
// for services that are not built on echo (package session). ctx bounds
// the store calls.
//
// Errors wrap ErrUnauthenticated, or profile.ErrUnavailable when the store
// does not answer.
func (m *Manager) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	id, _, err := m.verify(ctx, r)
	return id, err
}

// verify is Verify, saying also where the credential came from, and
// reporting the outcome to OnValidate.
func (m *Manager) verify(ctx context.Context, r *http.Request) (Identity, source, error) {
	id, src, err := m.authenticate(ctx, r)
	if m.onValidate != nil {
		m.onValidate(outcomeOf(err))
	}
	return id, src, err
}

// authenticate verifies the request's credential against the signature and
// the store.
func (m *Manager) authenticate(ctx context.Context, req *http.Request) (Identity, source, error) {
	raw, src, rej := m.credential(req)
	if rej != nil {
		return Identity{}, src, m.reject(ctx, src, *rej)
	}

	now := m.now()
	jv, ok := m.verified.get(raw, now)
	if !ok {
		var claims Claims
		if _, err := m.parser.ParseWithClaims(raw, &claims, m.keyFunc); err != nil {
			return Identity{}, src, m.reject(ctx, src, classify(err))
		}
		userID, err := uuid.Parse(claims.Subject)
		// uuid.Parse also takes urn:uuid:, braces and undashed forms; we only
		// ever sign the canonical one.
		if err != nil || userID.String() != claims.Subject || userID == uuid.Nil {
			return Identity{}, src, m.reject(ctx, src, rejSubject)
		}
		if claims.SID == "" {
			return Identity{}, src, m.reject(ctx, src, rejNoSession, slog.String("user", claims.Subject))
		}
		jv = verifiedJWT{userID: userID, subject: claims.Subject, sessionID: SessionIDFor(claims.SID),
			expires: claims.ExpiresAt.Time} // WithExpirationRequired: never nil here
		m.verified.put(raw, jv)
	}
	err := m.checkSession(ctx, src, jv, now)
	if err != nil {
		return Identity{}, src, err
	}
	return Identity{UserID: jv.userID, SessionID: jv.sessionID}, src, nil
}

// checkSession asks the store about the session of a verified JWT: it must
// exist, belong to the JWT's user and be within its timeouts. It slides the
// idle expiry of a live one.
func (m *Manager) checkSession(ctx context.Context, src source, jv verifiedJWT, now time.Time) error {
	userID, sessionID := jv.userID, jv.sessionID
	// Built only on the way out: a hot request should not allocate for logs.
	who := func() []slog.Attr {
		return []slog.Attr{slog.String("user", jv.subject), slog.String("session", sessionID)}
	}

	s, err := m.tokens.Lookup(ctx, userID, sessionID)
	switch {
	case errors.Is(err, profile.ErrNotFound):
		return m.reject(ctx, src, rejRevoked, who()...)
	case err != nil:
		// An outage is not a logout: keep the cookie, answer 503.
		return fmt.Errorf("auth: look up session: %w: %w", profile.ErrUnavailable, err)
	}
	if s.UserID != userID {
		return m.reject(ctx, src, rejWrongUser, who()...)
	}

	deadline := s.Created.Add(m.maxAge)
	if !now.Before(deadline) {
		m.revoke(profile.WithReason(ctx, profile.ReasonAbsolute), userID, sessionID)
		return m.reject(ctx, src, rejAbsoluteTimeout, who()...)
	}
	idle := now.Sub(s.LastSeen)
	// The store's TTL normally ends an idle session; this catches stores
	// whose TTLs do not run in real time (the embedded Redis).
	if idle >= m.ttl {
		m.revoke(profile.WithReason(ctx, profile.ReasonIdle), userID, sessionID)
		return m.reject(ctx, src, rejIdle, who()...)
	}
	if idle < m.touchEvery || m.readOnly {
		return nil
	}
	ttl := min(m.ttl, deadline.Sub(now)) // never outlive MaxAge
	if err := m.tokens.Touch(ctx, userID, sessionID, now, ttl); err != nil {
		if errors.Is(err, profile.ErrNotFound) {
			// Revoked since the Lookup: the store has spoken.
			return m.reject(ctx, src, rejRevoked, who()...)
		}
		// Read-only degradation: a lost sliding write must not log
		// anyone out; at worst the session idles out a little early.
		m.log.LogAttrs(ctx, slog.LevelWarn, "auth: session expiry not slid",
			append(who(), slog.Any("error", err))...)
	}
	return nil
}

// credential finds the request's credential. A nil rejection means raw is
// worth parsing.
func (m *Manager) credential(req *http.Request) (raw string, src source, rej *rejection) {
	if h := req.Header.Values(echo.HeaderAuthorization); len(h) > 0 {
		if len(h) > 1 {
			return "", sourceBearer, &rejBadHeader
		}
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h[0]), " ")
		tok = strings.TrimLeft(tok, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
			return "", sourceBearer, &rejBadHeader
		}
		raw, src = tok, sourceBearer
	} else {
		ck, err := req.Cookie(m.CookieNameFor(req))
		if err != nil {
			return "", sourceNone, &rejNoCredential
		}
		raw, src = ck.Value, sourceCookie
		if raw == "" {
			return "", src, &rejNoCredential
		}
	}
	if len(raw) > maxCredentialLen {
		return "", src, &rejTooLong
	}
	return raw, src, nil
}

// keyFunc picks the verification key by the JWT's kid header, so that a
// rotated-out key stops working the moment it leaves the config.
func (m *Manager) keyFunc(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"]
	if !ok {
		return m.allKeys, nil
	}
	id, ok := kid.(string)
	if !ok {
		return nil, errUnknownKey
	}
	for _, k := range m.keys {
		if k.id == id {
			return k.secret, nil
		}
	}
	return nil, errUnknownKey
}

// classify maps a jwt parse error to a rejection. The jwt error itself is
// not logged: its text may quote bytes of the token.
func classify(err error) rejection {
	switch {
	case errors.Is(err, errUnknownKey):
		return rejUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return rejExpired
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return rejMissingClaim
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return rejIssuer
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return rejSignature
	case errors.Is(err, jwt.ErrTokenMalformed):
		return rejMalformed
	}
	return rejClaims
}

// reject logs why a request was turned away and returns the rejection's
// error. The middleware clears a rejected cookie.
func (m *Manager) reject(ctx context.Context, src source, r rejection, attrs ...slog.Attr) error {
	if m.log.Enabled(ctx, r.level) {
		attrs = append(attrs, slog.String("reason", r.reason), slog.String("credential", src.String()))
		m.log.LogAttrs(ctx, r.level, "auth: request not authenticated", attrs...)
	}
	return r.err
}

// revoke ends a session that has timed out (ctx says which timeout, for the
// event the store records). Best effort: if the store fails, the session
// still cannot be used, and its TTL removes it. A ReadOnly Manager leaves
// that to the TTL.
func (m *Manager) revoke(ctx context.Context, userID uuid.UUID, sessionID string) {
	if m.readOnly {
		return
	}
	if err := m.tokens.Revoke(ctx, userID, sessionID); err != nil {
		m.log.LogAttrs(ctx, slog.LevelWarn, "auth: timed-out session not revoked",
			slog.String("user", userID.String()), slog.String("session", sessionID), slog.Any("error", err))
	}
}
