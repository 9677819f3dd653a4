// Package web is profilecache's HTTP layer: the HTML pages, the JSON API, the
// error mapping and the middleware that guards them (CSRF, rate limiting,
// body limits, security headers). Handlers parse the request, call one of the
// small consumer interfaces declared here (Profiles, Sessions, SessionData)
// and render; they never touch Redis or the backend directly.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Profiles is the profile data a handler reads. Implemented by
// *profile.Service.
type Profiles interface {
	// Login authenticates and preloads the user's profile. It returns an
	// error wrapping profile.ErrInvalidCredentials for an unknown email and a
	// wrong password alike, and the user's fence for the new session.
	Login(ctx context.Context, email, password string) (uuid.UUID, profile.Fence, error)
	// Read returns the parts of the user's profile that q names, all from
	// one stored version.
	Read(ctx context.Context, userID uuid.UUID, q profile.Query) (profile.View, error)
	// Refresh reloads the user's profile from the backend now.
	Refresh(ctx context.Context, userID uuid.UUID) error
}

// Sessions issues, lists and ends logins. Implemented by *auth.Manager.
type Sessions interface {
	// Issue fails with profile.ErrFenced when every session of the user
	// was ended since fence was read.
	Issue(ctx context.Context, userID uuid.UUID, fence profile.Fence, userAgent string) (auth.Issued, error)
	SetCookie(c echo.Context, t auth.Issued)
	ClearCookie(c echo.Context)
	// Revoke ends one session; a missing one is a no-op.
	Revoke(ctx context.Context, userID uuid.UUID, sessionID string) error
	RevokeAll(ctx context.Context, userID uuid.UUID) (int, error)
	Sessions(ctx context.Context, userID uuid.UUID) ([]profile.Session, error)
}

// SessionData is the small per-session key/value store. Implemented by
// *redisrepo.TokenStore.
type SessionData interface {
	// GetData returns an error wrapping profile.ErrNotFound when key is not set.
	GetData(ctx context.Context, userID uuid.UUID, sessionID, key string) ([]byte, error)
	// PutData returns an error wrapping profile.ErrDataFull when the session
	// already holds profile.MaxDataKeys other keys, and one wrapping
	// profile.ErrDataBudget when the data would exceed the session's byte
	// budget; nothing is written then.
	PutData(ctx context.Context, userID uuid.UUID, sessionID, key string, value []byte) error
	DeleteData(ctx context.Context, userID uuid.UUID, sessionID, key string) error
}

// The production implementations; redisrepo's is checked where cmd wires it,
// so that web need not import the storage adapter.
var (
	_ Profiles = (*profile.Service)(nil)
	_ Sessions = (*auth.Manager)(nil)
)

// Config configures a Server. Profiles, Sessions, Data and Authenticate are
// required.
type Config struct {
	Profiles Profiles
	Sessions Sessions
	Data     SessionData
	// Authenticate guards the signed-in routes: it sets the identity that
	// auth.UserID and auth.SessionID read, or returns an error wrapping
	// auth.ErrUnauthenticated (or profile.ErrUnavailable when the session
	// store is down). In production auth.Manager.Middleware().
	Authenticate echo.MiddlewareFunc
	// Ready backs GET /readyz: nil error means ready. Nil: always ready.
	Ready func(ctx context.Context) error
	// Metrics is served at GET /metrics. Nil: 404.
	Metrics http.Handler
	// Logger receives one line per request and every error. Default
	// slog.Default().
	Logger *slog.Logger
	// LoginByAddress and LoginByAccount throttle POST /login and POST
	// /api/login (throttle.go). Both required, and shared by every instance
	// (a limit in one process's memory multiplies with the instances).
	// LoginByAddress: every attempt from a client address (an IPv6 /64)
	// takes one. LoginByAccount: every attempt for an account takes one
	// and a successful or undecided one gives it back, so that only wrong
	// passwords spend it, from however many addresses they come.
	LoginByAddress Limiter
	LoginByAccount Limiter
	// IPExtractor finds the client address for the login rate limit.
	// Default echo.ExtractIPDirect(): X-Forwarded-For is ignored, so a
	// client cannot dodge the limit by forging it. Behind a trusted proxy
	// use echo.ExtractIPFromXFFHeader with the proxy's ranges.
	IPExtractor echo.IPExtractor
	// CSRFCookieSecure marks the login form's CSRF cookie Secure (HTTPS
	// only) on every response; a Secure cookie is named __Host-pc_csrf.
	CSRFCookieSecure bool
	// SecureRequest, when set, marks that cookie Secure for the requests it
	// approves even without CSRFCookieSecure (HTTPS through a trusted
	// proxy); the same hook as auth.Config.SecureRequest, so that both
	// cookies agree.
	SecureRequest func(*http.Request) bool
	// CSRFKey signs CSRF tokens (csrf.go), at least MinCSRFKeyLen bytes;
	// every instance serving one site needs the same key. Nil: a random key
	// per Server. CSRFPreviousKeys still verify, for key rotation.
	CSRFKey          []byte
	CSRFPreviousKeys [][]byte
	// Changes and WebhookSecret enable POST /internal/profile-changed
	// (webhook.go); with either unset the route does not exist. The secret
	// is at least MinWebhookSecretLen bytes.
	Changes       ProfileChanges
	WebhookSecret string
	// ObserveRequest, when set, sees every request: its route template
	// (or "unmatched"), method, final status and duration.
	ObserveRequest func(route, method string, status int, d time.Duration)
	// Tracer, when set, gives every request a server span named by its
	// route template (trace.go), in the trace of the caller's W3C
	// traceparent as Propagator reads it. Nil: no spans, at no cost.
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
}

// Request limits. The body limit is binary: echo reads "1M" as 10^6 bytes.
const (
	maxBodySize     = "1MiB"
	maxEmailLen     = 254 // RFC 5321 path limit
	maxPasswordLen  = 1024
	readyTimeout    = 2 * time.Second
	ordersPerPage   = profile.DefaultLimit
	sectionPreview  = 20 // invoices and inquiries shown on the profile page
	contentSecurity = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; " +
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
	apiContentSecurity = "default-src 'none'; frame-ancestors 'none'"
)

// Server holds the dependencies and the parsed templates. Build it with New;
// it is safe for concurrent use.
type Server struct {
	cfg          Config
	log          *slog.Logger
	pages        map[string]*template.Template
	fallbackPage []byte // served when even the error page fails to render
	static       fs.FS
	styleURL     string
	ids          *requestIDs
	csrf         *csrfGuard
	apiDoc       apiDocument
}

// New checks cfg, fills in defaults and parses every template once, so a
// broken template stops the program at start rather than on first use.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Profiles == nil:
		return nil, errors.New("web: config: Profiles is required")
	case cfg.Sessions == nil:
		return nil, errors.New("web: config: Sessions is required")
	case cfg.Data == nil:
		return nil, errors.New("web: config: Data is required")
	case cfg.Authenticate == nil:
		return nil, errors.New("web: config: Authenticate is required")
	case cfg.LoginByAddress == nil || cfg.LoginByAccount == nil:
		return nil, errors.New("web: config: LoginByAddress and LoginByAccount are required")
	case cfg.WebhookSecret != "" && len(cfg.WebhookSecret) < MinWebhookSecretLen:
		return nil, errWebhookConfig
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IPExtractor == nil {
		cfg.IPExtractor = echo.ExtractIPDirect()
	}

	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	css, err := fs.ReadFile(static, "style.css")
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	sum := sha256.Sum256(css)
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		static: static,
		// The content hash busts browser caches when the stylesheet changes.
		styleURL: "/static/style.css?v=" + hex.EncodeToString(sum[:4]),
		ids:      newRequestIDs(),
		apiDoc:   newAPIDocument(),
	}
	if s.csrf, err = newCSRFGuard(cfg); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(assets, s.templateFuncs()); err != nil {
		return nil, err
	}
	if s.fallbackPage, err = s.renderBytes("error", errorPage{
		basePage: basePage{Title: "Something went wrong"},
		Status:   http.StatusInternalServerError,
		Heading:  "Something went wrong",
		Message:  "Please try again in a moment.",
	}); err != nil {
		return nil, fmt.Errorf("web: render fallback error page: %w", err)
	}
	return s, nil
}

// Handler returns a fully configured echo: error handler, renderer, client
// address extraction, the global middleware and every route.
func (s *Server) Handler() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = s.cfg.IPExtractor
	e.Renderer = renderer{s}

	// Order matters: the request id first so every log line has it; the
	// logger outside Recover so it sees the final status of a panic; the
	// body limit before anything reads the form (the CSRF token checks,
	// which run with the routes: csrf.go).
	routes := map[string]bool{} // filled below, once the routes exist
	global := compose(runRoute,
		s.requestID,
		s.observe(routes),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.log.ErrorContext(c.Request().Context(), "panic", "path", c.Request().URL.Path, "err", err, "stack", string(stack))
				return fmt.Errorf("panic: %w", err)
			},
		}),
		securityHeaders,
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
			Limit: maxBodySize,
			// net/http gives a request without a body http.NoBody: nothing
			// to limit, and most requests are bodiless GETs.
			Skipper: func(c echo.Context) bool { return c.Request().Body == http.NoBody },
		}),
		s.crossOriginCheck)
	// echo v4 builds the middleware chain anew for every request: it
	// applies e.Use's middleware to the handler of the route it found, a
	// closure per middleware per request. This chain is built once; the one
	// middleware echo applies ignores that handler and returns the chain,
	// whose innermost handler runs the same route (runRoute). Routes compose
	// their own middleware once too (Routes).
	e.Use(func(echo.HandlerFunc) echo.HandlerFunc { return global })

	s.Routes(e)
	maps.Copy(routes, routeSet(e))
	return e
}
