// Package sessionecho is package session's middleware for echo v4. It is a
// package of its own so that session's API stays plain net/http, whatever
// becomes of echo's major versions.
package sessionecho

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/session"
)

// Middleware lets requests with a live profilecache session through, with
// their Identity in the request's context (Identity, session.FromContext).
// Others end in an *echo.HTTPError, 401 or 503, wrapping the Validate
// error, for the application's own HTTPErrorHandler to render.
func Middleware(v *session.Validator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Header.Get(echo.HeaderAuthorization) == "" {
				c.Response().Header().Add(echo.HeaderVary, echo.HeaderCookie)
			}
			id, err := v.Validate(req.Context(), req)
			if err != nil {
				status := session.Status(err)
				return echo.NewHTTPError(status, http.StatusText(status)).SetInternal(err)
			}
			c.SetRequest(req.WithContext(session.NewContext(req.Context(), id)))
			return next(c)
		}
	}
}

// Identity returns the Identity Middleware let in.
func Identity(c echo.Context) (session.Identity, bool) {
	return session.FromContext(c.Request().Context())
}
