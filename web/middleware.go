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
