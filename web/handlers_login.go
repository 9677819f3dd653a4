package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

// loginFailed is the one message for an unknown email and a wrong password
// alike, so that the form cannot be used to find out who has an account.
const loginFailed = "Invalid email or password."

func (s *Server) handleLoginForm(c echo.Context) error {
	return c.Render(http.StatusOK, "login", s.newLoginPage(c))
}

// newLoginPage carries the login form's CSRF token (and sets its cookie).
func (s *Server) newLoginPage(c echo.Context) loginPage {
	p := loginPage{basePage: basePage{Title: "Sign in"}}
	p.CSRF = s.loginToken(c)
	return p
}

// handleLogin is the form login: 303 to /profile with a session cookie, or
// the form again with one generic message and no cookie.
func (s *Server) handleLogin(c echo.Context) error {
	email := strings.TrimSpace(c.FormValue("email"))
	password := c.FormValue("password")

	page := s.newLoginPage(c)
	if len(email) <= maxEmailLen {
		page.Email = email // the password is never sent back
	}
	if email == "" || password == "" {
		page.Error = "Enter your email and password."
		return c.Render(http.StatusBadRequest, "login", page)
	}
	userID, fence, err := s.login(c, email, password)
	if errors.Is(err, profile.ErrInvalidCredentials) {
		page.Error = loginFailed
		return c.Render(http.StatusUnauthorized, "login", page)
	}
	if err != nil {
		return err
	}
	issued, err := s.cfg.Sessions.Issue(c.Request().Context(), userID, fence, c.Request().UserAgent())
	if err != nil {
		return err
	}
	s.cfg.Sessions.SetCookie(c, issued)
	return c.Redirect(http.StatusSeeOther, "/profile")
}

// handleAPILogin is the JSON login for API clients, who send the token back
// as "Authorization: Bearer <token>". It sets no cookie.
func (s *Server) handleAPILogin(c echo.Context) error {
	req, err := decodeLoginJSON(c)
	if err != nil {
		return err
	}
	userID, fence, err := s.login(c, strings.TrimSpace(req.Email), req.Password)
	if err != nil {
		return err
	}
	issued, err := s.cfg.Sessions.Issue(c.Request().Context(), userID, fence, c.Request().UserAgent())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toLoginResponseJSON(issued))
}

// login checks the credentials. Absurdly long ones are rejected like wrong
// ones, without bothering the backend.
//
// The account's budget is taken before the backend is asked, so that
// concurrent guesses cannot all slip past it, and given back unless the
// credentials were wrong: only failed attempts spend it, and a rightful
// user's logins never do. An attacker can still spend it (a lockout needs
// wrong passwords at the account rate), which is the price of throttling
// guesses that come from many addresses.
func (s *Server) login(c echo.Context, email, password string) (uuid.UUID, profile.Fence, error) {
	ctx := c.Request().Context()
	account := accountKey(email)
	if err := take(ctx, s.cfg.LoginByAccount, "account", account); err != nil {
		return uuid.Nil, "", err
	}
	var id uuid.UUID
	var fence profile.Fence
	var err error
	if len(email) > maxEmailLen || len(password) > maxPasswordLen {
		err = fmt.Errorf("web: login: credentials too long: %w", profile.ErrInvalidCredentials)
	} else {
		id, fence, err = s.cfg.Profiles.Login(ctx, email, password)
	}
	if !errors.Is(err, profile.ErrInvalidCredentials) {
		// Detached: a client that hung up after a success must not leave
		// its attempt charged.
		if rerr := s.cfg.LoginByAccount.Refund(context.WithoutCancel(ctx), account); rerr != nil {
			s.log.WarnContext(ctx, "login throttle: refund", "request_id", requestID(c), "err", rerr)
		}
	}
	return id, fence, err
}

// decodeLoginJSON reads exactly one JSON object with the fields email and
// password, and nothing else.
func decodeLoginJSON(c echo.Context) (loginRequestJSON, error) {
	var req loginRequestJSON
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return req, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonBodyError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return req, err
		}
		return req, badRequest("the body must hold exactly one JSON object")
	}
	if req.Email == "" || req.Password == "" {
		return req, badRequest("email and password are required")
	}
	return req, nil
}

// jsonBodyError turns a decoding error into a 400 that explains it without
// echoing the client's input back; read errors such as the body limit's 413
// keep their status.
func jsonBodyError(err error) error {
	var he *echo.HTTPError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &he):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; send a JSON object with email and password")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syntaxErr):
		return badRequest("the body is not valid JSON")
	case errors.As(err, &typeErr):
		return badRequest("the body must be a JSON object whose email and password are strings")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return badRequest("unknown field in the body; only email and password are accepted")
	}
	return fmt.Errorf("web: read login body: %w", err)
}

// Revocation wins: every logout below clears the cookie only once the store
// has confirmed the revocation. When it cannot (an outage: 503), the cookie
// stays, so that the user can simply try again; saying "signed out" while
// the session still works would be worse than an error. A logout tells the
// store its reason (profile.WithReason), so that its event says "logout"
// rather than "revoke" (docs/events.md).

// handleLogout ends the current session, if the request has a valid one.
// An expired or revoked session still clears the cookie and lands on
// /login; a store outage is a 503 that keeps it. A live session needs its
// CSRF token: a forged logout changes nothing (403, cookie kept).
func (s *Server) handleLogout(c echo.Context) error {
	err := s.authenticate(func(c echo.Context) error {
		userID, sessionID, err := sessionIdentity(c)
		if err != nil {
			return err
		}
		return s.cfg.Sessions.Revoke(profile.WithReason(c.Request().Context(), profile.ReasonLogout), userID, sessionID)
	})(c)
	if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
		return err
	}
	s.cfg.Sessions.ClearCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) handleAPILogout(c echo.Context) error {
	userID, sessionID, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Sessions.Revoke(profile.WithReason(c.Request().Context(), profile.ReasonLogout), userID, sessionID); err != nil {
		return err
	}
	s.cfg.Sessions.ClearCookie(c)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleLogoutAll(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Sessions.RevokeAll(c.Request().Context(), userID); err != nil {
		return err
	}
	s.cfg.Sessions.ClearCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) handleAPILogoutAll(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	n, err := s.cfg.Sessions.RevokeAll(c.Request().Context(), userID)
	if err != nil {
		return err
	}
	s.cfg.Sessions.ClearCookie(c)
	return c.JSON(http.StatusOK, revokedJSON{Revoked: n})
}

// identity is the signed-in user that the Authenticate middleware set.
func identity(c echo.Context) (uuid.UUID, error) {
	userID, ok := auth.UserID(c)
	if !ok || userID == uuid.Nil {
		return uuid.Nil, fmt.Errorf("web: %s: no identity: %w", c.Path(), auth.ErrUnauthenticated)
	}
	return userID, nil
}

// sessionIdentity is the signed-in user and the session of this request.
func sessionIdentity(c echo.Context) (uuid.UUID, string, error) {
	userID, err := identity(c)
	if err != nil {
		return uuid.Nil, "", err
	}
	sessionID, ok := auth.SessionID(c)
	if !ok || sessionID == "" {
		return uuid.Nil, "", fmt.Errorf("web: %s: no session id: %w", c.Path(), auth.ErrUnauthenticated)
	}
	return userID, sessionID, nil
}
