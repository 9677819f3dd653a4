package web

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// Forward auth (docs/forward-auth.md): a proxy in front of a service that
// knows nothing about profilecache asks GET /auth with the client's
// headers. 200 with the identity headers lets the request through; 401
// (JSON, like /api/*) turns it away. nginx auth_request and Traefik
// ForwardAuth call /auth itself; Envoy's ext_authz (HTTP) keeps the
// original method and appends the original path to its path_prefix, so
// every method of /auth/* is answered too.
const routeAuth = "/auth"

// The identity headers of a 200 from /auth. The proxy copies them onto the
// upstream request, replacing whatever the client sent under these names.
const (
	HeaderUserID    = "X-User-Id"
	HeaderSessionID = "X-Session-Id"
	HeaderUserEmail = "X-User-Email"
)

// maxHeaderEmail bounds X-User-Email: no address is longer (RFC 5321).
const maxHeaderEmail = 254

// isForwardAuth reports a path that /auth's routes serve.
func isForwardAuth(path string) bool {
	return path == routeAuth || strings.HasPrefix(path, routeAuth+"/")
}

func (s *Server) forwardAuthRoutes(e *echo.Echo) {
	// Config.Authenticate alone, without the session's CSRF check: /auth
	// changes nothing (the sliding expiry aside), and under Envoy an
	// upstream's POST arrives here as a POST. The upstream defends its
	// own unsafe requests.
	h := compose(s.handleForwardAuth, s.cfg.Authenticate)
	e.Any(routeAuth, h)
	e.Any(routeAuth+"/*", h)
}

// handleForwardAuth answers 200 with the identity headers and no body. The
// email comes from the cached basic data, the read /api/me makes: a hot
// /auth costs Redis nothing (TestForwardAuthHotCostsNoRedisCommand).
func (s *Server) handleForwardAuth(c echo.Context) error {
	userID, sessionID, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Basic: true})
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(HeaderUserID, userID.String())
	h.Set(HeaderSessionID, sessionID)
	// All three, always: a proxy that copies them (Traefik's
	// authResponseHeaders, Envoy's allowed_upstream_headers) then replaces
	// whatever the client sent under these names, an empty email included.
	email := v.Basic.Email
	if !headerSafe(email, maxHeaderEmail) {
		if email != "" {
			// The CRM's data, not the client's; still, a value that could
			// split or smuggle a header is left out rather than cleaned up.
			s.log.WarnContext(c.Request().Context(), "forward auth: email not fit for a header, sent empty",
				"user", userID.String(), "request_id", requestID(c))
		}
		email = ""
	}
	h.Set(HeaderUserEmail, email)
	return c.NoContent(http.StatusOK)
}

// headerSafe reports whether v can be a header value as it is: 1 to max
// bytes of valid UTF-8 without control characters (CR and LF above all)
// and without leading or trailing space, which proxies would trim.
func headerSafe(v string, max int) bool {
	if v == "" || len(v) > max || !utf8.ValidString(v) || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}
