package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// Errors, the same values profilecache's packages return, so that
// errors.Is works with either name.
var (
	// ErrUnauthenticated: no credential, or a bad, expired or revoked one.
	// Middleware answers 401.
	ErrUnauthenticated = auth.ErrUnauthenticated
	// ErrUnavailable: Redis did not answer. Middleware answers 503: an
	// outage is not a logout.
	ErrUnavailable = profile.ErrUnavailable
	// ErrNotCached: the profile is not in Redis now; profilecache loads it
	// again on its next request for the user.
	ErrNotCached = profile.ErrNotFound
)

// Defaults, the same as profilecache's.
const (
	DefaultTokenTTL     = auth.DefaultTokenTTL
	DefaultMaxAge       = auth.DefaultMaxAge
	DefaultProfileTTL   = redisrepo.DefaultProfileTTL
	DefaultRedisTimeout = 2 * time.Second
)

// Config configures a Validator. Secret and one of RedisURL or Redis are
// required; every other field must match profilecache's configuration
// where it is not the default.
type Config struct {
	// RedisURL is profilecache's REDIS_URL (redis://, rediss://, several
	// addresses, a cluster node or ?master_set= for Sentinel).
	RedisURL string
	// Redis is a client of your own instead of RedisURL; Close leaves it
	// open. Keep its client-side caching on: that is what makes a hot
	// check cost no round trip.
	Redis rueidis.Client
	// RedisTimeout bounds every Redis call. Default DefaultRedisTimeout.
	RedisTimeout time.Duration
	// Secret is profilecache's SESSION_SECRET; PreviousSecrets its
	// SESSION_SECRET_PREVIOUS during a rotation.
	Secret          []byte
	PreviousSecrets [][]byte
	// CookieSecure: browsers reach this service over HTTPS, so the session
	// cookie is the __Host- one (profilecache's COOKIE_SECURE, or HTTPS
	// through its trusted proxy). SecureRequest decides it per request
	// instead, e.g. from X-Forwarded-Proto set by your own proxy.
	CookieSecure  bool
	SecureRequest func(*http.Request) bool
	// TokenTTL, MaxAge and ProfileTTL are profilecache's TOKEN_TTL,
	// SESSION_MAX_AGE and PROFILE_TTL.
	TokenTTL   time.Duration
	MaxAge     time.Duration
	ProfileTTL time.Duration
	// ReadOnly: never write to Redis (no sliding expiry, no profile TTL
	// renewal); see the package doc.
	ReadOnly bool
	// OnError answers a request Middleware turns away. Default: 401 or
	// 503 with a JSON body {"error": "..."}, as profilecache's API does.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
	// Logger gets rejected credentials (Debug) and Redis trouble (Warn),
	// never a credential. Default slog.Default().
	Logger *slog.Logger
}

// Identity is who a request with a live session is from.
type Identity struct {
	UserID uuid.UUID
	// SessionID is the session's public id, as profilecache lists and
	// revokes it (GET /api/sessions); never a credential.
	SessionID string
}

// Validator checks profilecache sessions and reads cached profiles. It is
// safe for concurrent use; make one per process and share it.
type Validator struct {
	mgr      *auth.Manager
	profiles *redisrepo.ProfileStore
	onError  func(http.ResponseWriter, *http.Request, error)
	close    func()
}

// New connects to Redis and returns a Validator. Call Close when done.
func New(cfg Config) (*Validator, error) {
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = DefaultRedisTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, closeClient := cfg.Redis, func() {}
	switch {
	case client != nil && cfg.RedisURL != "":
		return nil, errors.New("session: config: set RedisURL or Redis, not both")
	case client == nil && cfg.RedisURL == "":
		return nil, errors.New("session: config: RedisURL or Redis is required")
	case client == nil:
		c, err := redisrepo.NewClient(cfg.RedisURL, cfg.RedisTimeout)
		if err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
		client, closeClient = c, c.Close
	}
	client = redisrepo.WithTimeout(client, cfg.RedisTimeout)
	mgr, err := auth.New(auth.Config{
		Tokens:          redisrepo.NewTokenStore(client, redisrepo.TokenOptions{IndexTTL: cfg.MaxAge, Logger: cfg.Logger}),
		Secret:          cfg.Secret,
		PreviousSecrets: cfg.PreviousSecrets,
		CookieSecure:    cfg.CookieSecure,
		SecureRequest:   cfg.SecureRequest,
		TokenTTL:        cfg.TokenTTL,
		MaxAge:          cfg.MaxAge,
		ReadOnly:        cfg.ReadOnly,
		Logger:          cfg.Logger,
	})
	if err != nil {
		closeClient()
		return nil, fmt.Errorf("session: %w", err)
	}
	v := &Validator{
		mgr: mgr,
		profiles: redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{
			TTL: cfg.ProfileTTL, NoRenew: cfg.ReadOnly, Logger: cfg.Logger,
		}),
		onError: cfg.OnError,
		close:   closeClient,
	}
	if v.onError == nil {
		v.onError = WriteError
	}
	return v, nil
}

// Close closes the Redis client New opened (not one passed as Config.Redis).
func (v *Validator) Close() { v.close() }

// Validate checks r's session: the Authorization: Bearer header when there
// is one, else the session cookie. Errors wrap ErrUnauthenticated or
// ErrUnavailable.
func (v *Validator) Validate(ctx context.Context, r *http.Request) (Identity, error) {
	id, err := v.mgr.Verify(ctx, r)
	if err != nil {
		return Identity{}, fmt.Errorf("session: %w", err)
	}
	return Identity(id), nil
}

// Middleware lets requests with a live session through to next, their
// Identity in the context (FromContext), and answers the others with
// Config.OnError.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			// The answer depends on the cookie: shared caches must know.
			w.Header().Add("Vary", "Cookie")
		}
		id, err := v.Validate(r.Context(), r)
		if err != nil {
			v.onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Read returns the parts of the user's cached profile that q names, all
// from one stored version. A profile that is not cached is ErrNotCached; a
// bad page is an error wrapping profile.ErrInvalidPage.
func (v *Validator) Read(ctx context.Context, userID uuid.UUID, q profile.Query) (profile.View, error) {
	view, err := v.profiles.Read(ctx, userID, q)
	if err != nil {
		return profile.View{}, fmt.Errorf("session: read profile: %w", err)
	}
	return view, nil
}

// Basic returns the user's cached basic data (name, email, address ...).
func (v *Validator) Basic(ctx context.Context, userID uuid.UUID) (profile.Basic, error) {
	view, err := v.Read(ctx, userID, profile.Query{Basic: true})
	return view.Basic, err
}

// Status is the HTTP status for a Validate error: 401, or 503 when Redis
// did not answer (an outage is not a logout), else 500.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError is Middleware's default answer to a rejected request: Status
// with a JSON body {"error": "..."} that tells nothing about the credential.
func WriteError(w http.ResponseWriter, _ *http.Request, err error) {
	status := Status(err)
	msg := "authentication required"
	h := w.Header()
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="profilecache"`)
	case http.StatusServiceUnavailable:
		msg = "temporarily unavailable, try again shortly"
		h.Set("Retry-After", "1")
	default:
		msg = "internal error"
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// identityKey is the context key of the Identity; unexported, so no other
// package can forge one.
type identityKey struct{}

// NewContext returns ctx carrying id, as Middleware passes it on. Tests of
// handlers use it to fake a signed-in request.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the Identity Middleware put in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
