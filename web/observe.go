package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/internal/logctx"
)

// routeUnmatched is the route label of requests that matched no route, so
// that scanners probing random paths cannot blow up the metric's
// cardinality.
const routeUnmatched = "unmatched"

// withRequestID is echo's RequestIDHandler: it puts the request id into the
// request's context, where logctx's slog handler finds it for every line
// logged with that context, in web and in the services it calls.
func withRequestID(c echo.Context, id string) {
	req := c.Request()
	c.SetRequest(req.WithContext(logctx.WithRequestID(req.Context(), id)))
}

// observeRequests reports every request to Config.ObserveRequest with its
// route template (c.Path(), never the raw path), method and final status.
// routes is filled in once the routes are registered, before serving.
func (s *Server) observeRequests(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if s.cfg.ObserveRequest == nil {
			return next
		}
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Answer now so the status is final; handleError runs once.
				c.Error(err)
			}
			route := c.Path()
			if !routes[route] {
				route = routeUnmatched
			}
			s.cfg.ObserveRequest(route, methodLabel(c.Request().Method), c.Response().Status, time.Since(start))
			return err
		}
	}
}

// methodLabel keeps client-chosen method names out of the labels.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// routeSet is the set of registered route templates.
func routeSet(e *echo.Echo) map[string]bool {
	set := make(map[string]bool)
	for _, r := range e.Routes() {
		set[r.Path] = true
	}
	return set
}

// maxRequestIDLen bounds an incoming X-Request-Id: it is logged on every
// line of the request and forwarded to the CRM.
const maxRequestIDLen = 128

// sanitizeRequestID drops an incoming X-Request-Id that is too long or not
// printable ASCII, so that a client can neither bloat every log line nor
// smuggle control characters into them; the RequestID middleware then makes
// a fresh one.
func sanitizeRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func validRequestID(id string) bool {
	if len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
