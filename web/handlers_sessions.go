package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// handleSessionsPage lists the user's sessions, this one marked, with a
// sign-out button for each other one.
func (s *Server) handleSessionsPage(c echo.Context) error {
	userID, current, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	list, err := s.cfg.Sessions.Sessions(ctx, userID)
	if err != nil {
		return err
	}
	// Only for the name in the header.
	v, err := s.cfg.Profiles.Read(ctx, userID, profile.Query{Basic: true})
	if err != nil {
		return err
	}

	p := sessionsPage{basePage: s.newBasePage(c, "Your sessions")}
	p.UserName = displayName(v.Basic)
	for _, ss := range list {
		p.Sessions = append(p.Sessions, sessionRow{
			ID:        ss.ID,
			UserAgent: ss.UserAgent,
			Created:   ss.Created,
			LastSeen:  ss.LastSeen,
			Current:   ss.ID == current,
		})
	}
	return c.Render(http.StatusOK, "sessions", p)
}

// handleRevokeSession signs out one session and goes back to the list. The
// store looks sessions up under the caller's user id, so another user's
// session id is simply not found; an unknown or already ended one is a
// no-op, so a double-clicked button does not end on an error page. Revoking
// the current session is a logout.
func (s *Server) handleRevokeSession(c echo.Context) error {
	userID, current, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.cfg.Sessions.Revoke(c.Request().Context(), userID, id); err != nil {
		return err
	}
	if id == current {
		s.cfg.Sessions.ClearCookie(c)
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return c.Redirect(http.StatusSeeOther, "/sessions")
}

func (s *Server) handleAPISessions(c echo.Context) error {
	userID, current, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	list, err := s.cfg.Sessions.Sessions(c.Request().Context(), userID)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, ss := range list {
		out = append(out, toSessionJSON(ss, ss.ID == current))
	}
	return c.JSON(http.StatusOK, out)
}

// handleAPIRevokeSession answers 404 for an id that is not one of the
// caller's live sessions, so a client learns about a typo.
func (s *Server) handleAPIRevokeSession(c echo.Context) error {
	userID, current, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	list, err := s.cfg.Sessions.Sessions(ctx, userID)
	if err != nil {
		return err
	}
	if !hasSession(list, id) {
		return echo.NewHTTPError(http.StatusNotFound, "no such session")
	}
	if err := s.cfg.Sessions.Revoke(ctx, userID, id); err != nil {
		return err
	}
	if id == current {
		s.cfg.Sessions.ClearCookie(c)
	}
	return c.NoContent(http.StatusNoContent)
}

func hasSession(list []profile.Session, id string) bool {
	for _, ss := range list {
		if ss.ID == id {
			return true
		}
	}
	return false
}

// pathParam returns the decoded path parameter. echo matches on the raw
// path when the URL has escapes that differ from the default encoding (a
// "%2F", say), and then leaves the parameter escaped.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", badRequest("malformed %s in the path", name)
	}
	return u, nil
}
