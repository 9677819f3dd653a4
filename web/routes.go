package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Routes registers every route and its route-level middleware. The global
// middleware (CSRF, body limit, headers) is installed by Handler.
//
// Authentication: routes with authn need a valid session (cookie or Bearer).
// POST /logout has no authn: it authenticates inside the handler and goes
// on without an identity, so that it clears the cookie and lands on /login
// even when the session has already ended.
func (s *Server) Routes(e *echo.Echo) {
	authn := s.cfg.Authenticate
	limitLogin := s.loginRateLimit()

	// Machines and assets.
	e.GET(routeHealthz, s.handleHealthz)
	e.GET(routeReadyz, s.handleReadyz)
	if s.cfg.Metrics != nil {
		e.GET(routeMetrics, echo.WrapHandler(s.cfg.Metrics))
	}
	e.GET(routeStatic, s.handleStatic)
	s.webhookRoutes(e) // POST /internal/profile-changed, when configured

	// Pages.
	e.GET("/", s.handleRoot)
	e.GET("/login", s.handleLoginForm)
	e.POST("/login", s.handleLogin, limitLogin)
	e.POST("/logout", s.handleLogout)
	e.POST("/logout-all", s.handleLogoutAll, authn)
	e.GET("/profile", s.handleProfilePage, authn)
	e.GET("/sessions", s.handleSessionsPage, authn)
	e.POST("/sessions/:id/revoke", s.handleRevokeSession, authn)

	// JSON API.
	e.POST(routeAPILogin, s.handleAPILogin, limitLogin)
	e.POST("/api/logout", s.handleAPILogout, authn)
	e.POST("/api/logout-all", s.handleAPILogoutAll, authn)
	e.GET("/api/me", s.handleAPIMe, authn)
	e.GET("/api/me/orders", s.handleAPIOrders, authn)
	e.GET("/api/me/invoices", s.handleAPIInvoices, authn)
	e.GET("/api/me/inquiries", s.handleAPIInquiries, authn)
	e.GET("/api/me/interests", s.handleAPIInterests, authn)
	e.POST("/api/me/refresh", s.handleAPIRefresh, authn)
	e.GET("/api/sessions", s.handleAPISessions, authn)
	e.DELETE("/api/sessions/:id", s.handleAPIRevokeSession, authn)
	// The key-less path is routed too, so that an empty key is a 400 that
	// says so rather than a bare 404.
	for _, path := range []string{"/api/session/data/:key", "/api/session/data/"} {
		e.GET(path, s.handleAPIGetData, authn)
		e.PUT(path, s.handleAPIPutData, authn)
		e.DELETE(path, s.handleAPIDeleteData, authn)
	}
}

func (s *Server) handleRoot(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/profile")
}
