package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Routes registers every route and its route-level middleware. The global
// middleware (CSRF, body limit, headers) is installed by Handler.
//
// Route middleware is composed here, once (compose), not passed to echo,
// which would compose it again on every request.
//
// Authentication: routes with authn need a valid session (cookie or Bearer),
// and their unsafe methods the session's CSRF token (sessionCSRF): the two
// come together, so that no signed-in route can lack the check. POST /logout
// has no authn: it authenticates inside the handler (with the same check)
// and goes on without an identity, so that it clears the cookie and lands on
// /login even when the session has already ended. POST /login checks the
// login form's own token (loginCSRF).
func (s *Server) Routes(e *echo.Echo) {
	authn := s.authenticate
	limitLogin := s.loginRateLimit()

	// Machines and assets.
	e.GET(routeHealthz, s.handleHealthz)
	e.GET(routeReadyz, s.handleReadyz)
	if s.cfg.Metrics != nil {
		e.GET(routeMetrics, echo.WrapHandler(s.cfg.Metrics))
	}
	e.GET(routeStatic, s.handleStatic)
	s.webhookRoutes(e)     // POST /internal/profile-changed, when configured
	s.forwardAuthRoutes(e) // /auth for proxies in front of other services

	// Pages.
	e.GET("/", s.handleRoot)
	e.GET("/login", s.handleLoginForm)
	e.POST("/login", compose(s.handleLogin, s.loginCSRF, limitLogin))
	e.POST("/logout", s.handleLogout)
	e.POST("/logout-all", compose(s.handleLogoutAll, authn))
	e.GET("/profile", compose(s.handleProfilePage, authn))
	e.GET("/sessions", compose(s.handleSessionsPage, authn))
	e.POST("/sessions/:id/revoke", compose(s.handleRevokeSession, authn))

	// JSON API, as docs/openapi.yaml describes it (TestEveryRouteIsDocumented).
	e.GET(routeOpenAPI, s.handleOpenAPI)
	e.POST(routeAPILogin, compose(s.handleAPILogin, limitLogin))
	e.POST("/api/logout", compose(s.handleAPILogout, authn))
	e.POST("/api/logout-all", compose(s.handleAPILogoutAll, authn))
	e.GET("/api/me", compose(s.handleAPIMe, authn))
	e.GET("/api/me/orders", compose(s.handleAPIOrders, authn))
	e.GET("/api/me/invoices", compose(s.handleAPIInvoices, authn))
	e.GET("/api/me/inquiries", compose(s.handleAPIInquiries, authn))
	e.GET("/api/me/interests", compose(s.handleAPIInterests, authn))
	e.POST("/api/me/refresh", compose(s.handleAPIRefresh, authn))
	e.GET("/api/sessions", compose(s.handleAPISessions, authn))
	e.DELETE("/api/sessions/:id", compose(s.handleAPIRevokeSession, authn))
	// The key-less path is routed too, so that an empty key is a 400 that
	// says so rather than a bare 404.
	for _, path := range []string{"/api/session/data/:key", "/api/session/data/"} {
		e.GET(path, compose(s.handleAPIGetData, authn))
		e.PUT(path, compose(s.handleAPIPutData, authn))
		e.DELETE(path, compose(s.handleAPIDeleteData, authn))
	}
}

// authenticate is Config.Authenticate followed by the session's CSRF check.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return s.cfg.Authenticate(s.sessionCSRF(next))
}

func (s *Server) handleRoot(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/profile")
}

// compose wraps h in mw once, the first outermost, as echo would on every
// request if mw were passed to e.GET and friends.
func compose(h echo.HandlerFunc, mw ...echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// runRoute is the innermost handler of the global chain: the handler of the
// route that echo's router found for c (or its 404 and 405 handlers).
func runRoute(c echo.Context) error { return c.Handler()(c) }
