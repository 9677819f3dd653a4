// Package auth authenticates requests. A login gets a random token that is
// kept server-side (TokenStore) and travels inside a signed JWT, in a cookie
// for browsers or an Authorization: Bearer header for API clients. The JWT
// alone is never enough: every request also checks the store, so a logout or
// revoke takes effect at once, and slides the session's idle expiry.
//
// Nothing in this package logs a token, a JWT or a secret.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// ErrUnauthenticated is wrapped by every authentication failure: no, bad,
// expired or revoked credential. web maps it to 401 on /api/* and to a
// redirect to /login on pages. A store outage is not one of these: it wraps
// profile.ErrUnavailable instead, so that Redis trouble never logs anyone out.
var ErrUnauthenticated = errors.New("authentication required")

// MinSecretLen is the shortest accepted signing secret: HS256 wants at least
// as many key bytes as the hash has.
const MinSecretLen = 32

// Defaults filled in by New.
const (
	DefaultCookieName = "pc_session"
	// SecureCookiePrefix names every Secure session cookie. Browsers take a
	// "__Host-" cookie only if it is Secure, has Path=/ and no Domain, so a
	// sibling subdomain or a plain-HTTP response cannot plant or overwrite
	// one: on HTTPS the service reads only the prefixed name.
	SecureCookiePrefix = "__Host-"
	DefaultTokenTTL    = 20 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
)

const (
	issuer = "profilecache"
	// maxUserAgentBytes bounds what a client can make us store per session.
	maxUserAgentBytes = 256
	// maxCredentialLen bounds the work an attacker can make the JWT parser
	// do; our own JWTs are about 300 bytes.
	maxCredentialLen = 4096
)

// Config configures a Manager. Tokens and Secret are required.
type Config struct {
	// Tokens keeps the server-side sessions. Required.
	Tokens TokenStore
	// Secret signs new JWTs. Required, at least MinSecretLen bytes.
	Secret []byte
	// PreviousSecrets still verify JWTs (but never sign), so that the
	// secret can be rotated without logging everyone out. Each at least
	// MinSecretLen bytes.
	PreviousSecrets [][]byte
	// CookieName is the session cookie's name. Default DefaultCookieName.
	// A Secure cookie is named SecureCookiePrefix + CookieName, so the
	// name must not carry a prefix itself.
	CookieName string
	// CookieSecure marks the cookie Secure (HTTPS only).
	CookieSecure bool
	// SecureRequest, when set, marks the cookie Secure for the requests it
	// approves even without CookieSecure: behind a TLS-terminating trusted
	// proxy, HTTPS clients get a Secure cookie while plain-HTTP runs work.
	SecureRequest func(*http.Request) bool
	// TokenTTL is the idle timeout; every request slides it. Default
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// MaxAge is the absolute timeout: no session lives longer, however
	// active. At least TokenTTL. Default DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives authentication failures (Debug/Info, never a
	// credential) and store trouble (Warn). Default slog.Default().
	Logger *slog.Logger
	// OnValidate, when set, sees the outcome of every credential check the
	// middleware makes: one of the Outcome* constants (outcome.go).
	OnValidate func(outcome string)
	// ReadOnly makes verification write nothing: the idle expiry is not
	// slid and a timed-out session is rejected but left to its TTL. For
	// processes that only check sessions (package session's option).
	ReadOnly bool
}

// Claims is what our JWT carries. Subject is the user id; SID is the
// server-side session token, which the store knows only by SessionIDFor(SID).
type Claims struct {
	jwt.RegisteredClaims
	SID string `json:"sid"`
}

// Issued is a freshly issued credential.
type Issued struct {
	// Token is the signed JWT: the cookie value or the Bearer credential.
	Token string
	// SessionID is the public id of the session (as listed and revoked).
	SessionID string
	// ExpiresAt is the absolute expiry. The session ends earlier if it is
	// idle for TokenTTL or revoked.
	ExpiresAt time.Time
}

// signingKey is one HMAC secret and its public id (the JWT "kid" header).
type signingKey struct {
	id     string
	secret []byte
}

// Manager issues, verifies and revokes sessions. It is safe for concurrent
// use.
type Manager struct {
	tokens     TokenStore
	signing    signingKey
	keys       []signingKey           // signing first, then previous secrets
	allKeys    jwt.VerificationKeySet // for JWTs without a kid
	parser     *jwt.Parser
	verified   verifiedCache // JWTs that passed parser, see verified.go
	cookieName string
	secureName string // SecureCookiePrefix + cookieName
	secure     bool
	secureReq  func(*http.Request) bool
	ttl        time.Duration
	maxAge     time.Duration
	touchEvery time.Duration
	now        func() time.Time
	log        *slog.Logger
	onValidate func(outcome string)
	readOnly   bool
}

// New checks cfg, fills in defaults and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{
		tokens:     cfg.Tokens,
		cookieName: cfg.CookieName,
		secureName: SecureCookiePrefix + cfg.CookieName,
		secure:     cfg.CookieSecure,
		secureReq:  cfg.SecureRequest,
		ttl:        cfg.TokenTTL,
		maxAge:     cfg.MaxAge,
		touchEvery: touchInterval(cfg.TokenTTL),
		now:        cfg.Now,
		log:        cfg.Logger,
		onValidate: cfg.OnValidate,
		readOnly:   cfg.ReadOnly,
	}
	if err := m.setKeys(cfg.Secret, cfg.PreviousSecrets); err != nil {
		return nil, err
	}
	m.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(cfg.Now),
	)
	return m, nil
}

// withDefaults checks cfg and fills in the defaults.
func (cfg *Config) withDefaults() error {
	if cfg.Tokens == nil {
		return errors.New("auth: config: Tokens is required")
	}
	if len(cfg.Secret) < MinSecretLen {
		return fmt.Errorf("auth: config: secret has %d bytes, want at least %d", len(cfg.Secret), MinSecretLen)
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	// net/http silently drops a cookie with an invalid name; fail at start
	// instead of never logging anyone in.
	if err := (&http.Cookie{Name: cfg.CookieName, Value: "x"}).Valid(); err != nil {
		return fmt.Errorf("auth: config: cookie name %q: %w", cfg.CookieName, err)
	}
	if hasCookiePrefix(cfg.CookieName) {
		return fmt.Errorf("auth: config: cookie name %q: no __Host- or __Secure- prefix, it is added to Secure cookies", cfg.CookieName)
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.TokenTTL < 0 {
		return fmt.Errorf("auth: config: TokenTTL %v must be positive", cfg.TokenTTL)
	}
	if cfg.MaxAge < cfg.TokenTTL {
		return fmt.Errorf("auth: config: MaxAge %v is shorter than TokenTTL %v", cfg.MaxAge, cfg.TokenTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// setKeys makes secret the signing key and accepts the previous ones too.
func (m *Manager) setKeys(secret []byte, previous [][]byte) error {
	m.signing = newSigningKey(secret)
	m.keys = append(m.keys, m.signing)
	for i, s := range previous {
		if len(s) < MinSecretLen {
			return fmt.Errorf("auth: config: previous secret %d has %d bytes, want at least %d", i+1, len(s), MinSecretLen)
		}
		k := newSigningKey(s)
		if !hasKey(m.keys, k.id) { // the old secret may still be configured as current
			m.keys = append(m.keys, k)
		}
	}
	for _, k := range m.keys {
		m.allKeys.Keys = append(m.allKeys.Keys, k.secret)
	}
	return nil
}

// touchInterval is how stale LastSeen may get before a request writes it
// again: a busy user should not cost a store write per request, and the
// idle timeout loses at most this much precision.
func touchInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/20, time.Second), time.Minute)
}

func newSigningKey(secret []byte) signingKey {
	// The kid names a key without revealing it; the prefix keeps the
	// digest from being a plain hash of the secret.
	sum := sha256.Sum256(append([]byte("profilecache/auth kid\x00"), secret...))
	return signingKey{id: hex.EncodeToString(sum[:8]), secret: append([]byte(nil), secret...)}
}

func hasKey(keys []signingKey, id string) bool {
	for _, k := range keys {
		if k.id == id {
			return true
		}
	}
	return false
}

// CookieName is the name of the session cookie when it is not Secure;
// CookieNameFor gives the name a request uses.
func (m *Manager) CookieName() string { return m.cookieName }

// CookieNameFor is the session cookie's name for r: SecureCookiePrefix +
// CookieName when the cookie is Secure for r, else CookieName. The
// middleware reads only this name, so on HTTPS a cookie without the prefix,
// which anyone on a sibling subdomain or on plain HTTP could have planted,
// is ignored.
func (m *Manager) CookieNameFor(r *http.Request) string {
	if m.cookieSecure(r) {
		return m.secureName
	}
	return m.cookieName
}

// cookieSecure reports whether the session cookie is Secure for r.
func (m *Manager) cookieSecure(r *http.Request) bool {
	return m.secure || (m.secureReq != nil && m.secureReq(r))
}

// hasCookiePrefix reports a name that browsers treat specially (RFC 6265bis
// section 4.1.3; they compare case-insensitively).
func hasCookiePrefix(name string) bool {
	for _, p := range []string{"__host-", "__secure-"} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// SessionIDFor is the public id of the session that token proves: base64url
// (no padding) of the first 16 bytes of sha256(token). Stores, listings and
// logs see only this, so none of them can be replayed as a credential.
func SessionIDFor(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sessionIDLen is len(SessionIDFor(anything)).
const sessionIDLen = 22

// validSessionID reports whether id could have come from SessionIDFor, so
// that ids from URLs reach the store only when well-formed.
func validSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil
}

// Issue starts a new session for userID and returns its signed JWT. It
// always makes a new random token and never reuses anything from the
// request, so a session id planted before login is worthless (fixation).
// fence is the user's fence as read when the login began (profile.Fence):
// if every session of the user has been ended since, no session is created
// and the error wraps profile.ErrFenced.
func (m *Manager) Issue(ctx context.Context, userID uuid.UUID, fence profile.Fence, userAgent string) (Issued, error) {
	if userID == uuid.Nil {
		return Issued{}, errors.New("auth: issue: nil user id")
	}
	tok, err := uuid.NewRandom() // crypto/rand
	if err != nil {
		return Issued{}, fmt.Errorf("auth: issue: new token: %w", err)
	}
	token := tok.String()
	now := m.now()
	s := profile.Session{
		ID:        SessionIDFor(token),
		UserID:    userID,
		Created:   now,
		LastSeen:  now,
		UserAgent: cleanUserAgent(userAgent),
		Fence:     fence,
	}
	if err := m.tokens.Create(ctx, s, m.ttl); err != nil {
		return Issued{}, storeError("issue: create session", err)
	}

	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(m.maxAge)),
		},
		SID: token,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = m.signing.id
	signed, err := t.SignedString(m.signing.secret)
	if err != nil {
		// Cannot happen with an HMAC key; do not leave an orphan session.
		_ = m.tokens.Revoke(ctx, userID, s.ID)
		return Issued{}, fmt.Errorf("auth: issue: sign: %w", err)
	}
	return Issued{Token: signed, SessionID: s.ID, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// cleanUserAgent makes the client-supplied User-Agent fit for storage and
// display: valid UTF-8, at most maxUserAgentBytes, not cut inside a rune.
func cleanUserAgent(ua string) string {
	if len(ua) > 4*maxUserAgentBytes { // do not scan megabytes for nothing
		ua = ua[:4*maxUserAgentBytes]
	}
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	if len(ua) <= maxUserAgentBytes {
		return ua
	}
	cut := maxUserAgentBytes
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}

// Revoke ends one of the user's sessions. A missing or malformed session id
// is a no-op, like revoking a session that has already expired.
func (m *Manager) Revoke(ctx context.Context, userID uuid.UUID, sessionID string) error {
	if !validSessionID(sessionID) {
		return nil
	}
	if err := m.tokens.Revoke(ctx, userID, sessionID); err != nil {
		return storeError("revoke session", err)
	}
	return nil
}

// RevokeAll ends every session of the user and says how many there were.
func (m *Manager) RevokeAll(ctx context.Context, userID uuid.UUID) (int, error) {
	n, err := m.tokens.RevokeAll(ctx, userID)
	if err != nil {
		return n, storeError("revoke all sessions", err)
	}
	return n, nil
}

// Sessions lists the user's live sessions, most recently seen first.
func (m *Manager) Sessions(ctx context.Context, userID uuid.UUID) ([]profile.Session, error) {
	ss, err := m.tokens.List(ctx, userID)
	if err != nil {
		return nil, storeError("list sessions", err)
	}
	return ss, nil
}

// storeError wraps a TokenStore error with op. Anything but not-found is an
// outage and also wraps profile.ErrUnavailable, so that web answers 503.
func storeError(op string, err error) error {
	if errors.Is(err, profile.ErrNotFound) || errors.Is(err, profile.ErrUnavailable) || errors.Is(err, profile.ErrFenced) {
		return fmt.Errorf("auth: %s: %w", op, err)
	}
	return fmt.Errorf("auth: %s: %w: %w", op, profile.ErrUnavailable, err)
}
