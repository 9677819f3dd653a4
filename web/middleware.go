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

// Response headers, built once: the middleware puts these slices into each
// response's header map as they are, with canonical keys, so that a request
// pays neither key canonicalization nor an allocation per header. Sharing is
// safe: net/http copies the map before writing it, and Header.Add appends to
// a full slice, which copies.
var (
	hdrNoStore     = []string{"no-store"}
	hdrNosniff     = []string{"nosniff"}
	hdrDenyFraming = []string{"DENY"}
	hdrSameOrigin  = []string{"same-origin"}
	hdrNoXSSFilter = []string{"0"} // the legacy XSS auditor did more harm than good; CSP replaces it
	hdrPageCSP     = []string{contentSecurity}
	hdrAPICSP      = []string{apiContentSecurity}
)

// apiPrefix starts every JSON API path.
const apiPrefix = "/api/"

// securityHeaders sets the security and cache headers. Pages get the full
// browser set. JSON API answers are never rendered as a document, so they
// get the few headers that still matter for them (nosniff, no framing, a
// CSP that allows nothing) and are shorter for the many small API calls.
// Everything but the stylesheet is personal and kept out of every cache.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDenyFraming
		if c.Path() != routeStatic {
			h["Cache-Control"] = hdrNoStore
		}
		if strings.HasPrefix(c.Request().URL.Path, apiPrefix) {
			h["Content-Security-Policy"] = hdrAPICSP
		} else {
			h["Content-Security-Policy"] = hdrPageCSP
			h["Referrer-Policy"] = hdrSameOrigin
			h["X-Xss-Protection"] = hdrNoXSSFilter
		}
		return next(c)
	}
}
