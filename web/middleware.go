package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Route patterns that middleware skippers compare against c.Path().
const (
	routeStatic   = "/static/*"
	routeHealthz  = "/healthz"
	routeReadyz   = "/readyz"
	routeMetrics  = "/metrics"
	routeAPILogin = "/api/login"
)

// isProbe reports whether c matched a route that machines poll or that
// serves public files: no session, no form, no point in logging every hit.
func isProbe(c echo.Context) bool {
	switch c.Path() {
	case routeStatic, routeHealthz, routeReadyz, routeMetrics:
		return true
	}
	return false
}

// probeSkipper keeps health checks, scrapes and stylesheet hits out of the
// request log.
func probeSkipper(c echo.Context) bool { return isProbe(c) }

// csrfSkipper exempts requests that cannot be forged cross-site:
//   - Bearer-authenticated API calls: a browser never adds an Authorization
//     header to a cross-site request without a CORS preflight, which this
//     service does not answer.
//   - POST /api/login: JSON only (415 otherwise, which a cross-site form
//     cannot send) and there is no session yet to ride on.
//   - POST /internal/profile-changed: a server-to-server call that proves
//     itself with a shared secret header that a cross-site page cannot know.
//   - probes and static files: no state changes, and no CSRF cookie needed.
func csrfSkipper(c echo.Context) bool {
	if hasBearer(c.Request()) {
		return true
	}
	if c.Request().Method == http.MethodPost && c.Path() == routeAPILogin {
		return true
	}
	// By the raw path, so that a disabled webhook (no route) is a plain 404.
	if c.Request().URL.Path == routeProfileChanged {
		return true
	}
	return isProbe(c)
}

// hasBearer reports an "Authorization: Bearer <something>" header; the
// scheme is case-insensitive (RFC 9110 section 11.1).
func hasBearer(r *http.Request) bool {
	const scheme = "bearer "
	h := r.Header.Get(echo.HeaderAuthorization)
	return len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme)
}

// noStore keeps pages and API answers, which are personal, out of every
// cache. Only the stylesheet may be cached.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() != routeStatic {
			c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		}
		return next(c)
	}
}
