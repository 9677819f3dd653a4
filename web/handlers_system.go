package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusJSON{Status: "ok"})
}

// handleReadyz answers 503 while the store does not answer, so that a load
// balancer sends traffic elsewhere. The reason goes to the log only.
func (s *Server) handleReadyz(c echo.Context) error {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "err", err)
			c.Response().Header().Set(echo.HeaderRetryAfter, "1")
			return c.JSON(http.StatusServiceUnavailable, statusJSON{Status: "unavailable"})
		}
	}
	return c.JSON(http.StatusOK, statusJSON{Status: "ready"})
}

// handleStatic serves the embedded stylesheet. Pages link it with a
// content hash (?v=...), so browsers may keep it for a day.
func (s *Server) handleStatic(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "public, max-age=86400")
	if err := echo.StaticDirectoryHandler(s.static, true)(c); err != nil {
		h.Set(echo.HeaderCacheControl, "no-store") // never cache a 404
		return err
	}
	return nil
}
