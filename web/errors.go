package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

// internalError is all a client learns about a 500.
const internalError = "internal error"

// errorStatus maps the domain's sentinel errors to statuses: the one place
// where the HTTP meaning of an error is decided. The first match wins.
// Messages are for clients, so they never include the wrapped error.
var errorStatus = []struct {
	target  error
	status  int
	message string
}{
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "authentication required"},
	{profile.ErrInvalidCredentials, http.StatusUnauthorized, "invalid email or password"},
	{profile.ErrFenced, http.StatusUnauthorized, "every session of this account was just ended: sign in again"},
	{profile.ErrInvalidPage, http.StatusBadRequest, "invalid page: offset must be 0 or more and limit 1 to 100"},
	{profile.ErrNotFound, http.StatusNotFound, "not found"},
	{profile.ErrDataFull, http.StatusConflict, "session data is full: delete a key first"},
	{profile.ErrDataBudget, http.StatusRequestEntityTooLarge, "session data would exceed its size limit: delete keys first"},
	{profile.ErrTooSoon, http.StatusTooManyRequests, "the profile was loaded moments ago: refresh again after Retry-After seconds"},
	{errLoginThrottled, http.StatusTooManyRequests, "too many login attempts, try again later"},
	{errCrossOrigin, http.StatusForbidden, "cross-origin request refused: use this site's own pages"},
	{errCSRFToken, http.StatusForbidden, "missing or invalid CSRF token: reload the page and try again"},
	// Before ErrUnavailable, which the service adds to it: say which
	// dependency misbehaved.
	{profile.ErrBadBackendResponse, http.StatusServiceUnavailable, "the customer database sent an invalid response, try again later"},
	{profile.ErrUnavailable, http.StatusServiceUnavailable, "temporarily unavailable, try again shortly"},
	// A dependency that ran out of time, or a client that went away, is
	// not a bug in this service.
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "temporarily unavailable, try again shortly"},
	{context.Canceled, http.StatusServiceUnavailable, "request cancelled"},
	// The server's ReadTimeout passed while a handler read the body: a
	// client that sends too slowly.
	{os.ErrDeadlineExceeded, http.StatusRequestTimeout, "request timeout: the body came too slowly"},
}

// classify returns the status and client-safe message for err.
func classify(err error) (int, string) {
	for _, e := range errorStatus {
		if errors.Is(err, e.target) {
			return e.status, detailed(err, e.message)
		}
	}
	// echo's own errors (404, 405, 413, 429) and the 400s that
	// handlers build carry their status and a message meant for clients.
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Code >= http.StatusInternalServerError {
			if he.Code == http.StatusInternalServerError {
				return he.Code, internalError
			}
			return he.Code, strings.ToLower(http.StatusText(he.Code))
		}
		if msg, ok := he.Message.(string); ok && msg != "" {
			return he.Code, msg
		}
		return he.Code, http.StatusText(he.Code)
	}
	return http.StatusInternalServerError, internalError
}

// detailed is message with the client-safe facts some errors carry: the
// client of a full session can only act on the limit when it knows it.
func detailed(err error, message string) string {
	if be, ok := errors.AsType[*profile.DataBudgetError](err); ok {
		return fmt.Sprintf("session data would exceed %d bytes: delete keys first", be.Budget)
	}
	return message
}

// ctxErrorHandled marks a request whose error was already answered: echo's
// request logger hands the error it handled back up the chain, and echo
// then calls the error handler a second time.
const ctxErrorHandled = "web.error_handled"

// handleError is the echo HTTPErrorHandler: it logs err and answers with
// JSON on /api/* (and to clients that ask for JSON), a redirect to /login
// for an anonymous page request, and a friendly error page otherwise.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Get(ctxErrorHandled) != nil {
		return
	}
	c.Set(ctxErrorHandled, true)

	status, message := classify(err)
	req := c.Request()
	attrs := []slog.Attr{
		slog.String("method", req.Method),
		slog.String("path", req.URL.Path),
		slog.Int("status", status),
		slog.String("request_id", requestID(c)),
		slog.Any("err", err),
	}
	ctx := req.Context()
	if c.Response().Committed {
		s.log.LogAttrs(ctx, slog.LevelWarn, "error after the response was sent", attrs...)
		return
	}
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "request failed", attrs...)

	h := c.Response().Header()
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set(echo.HeaderRetryAfter, retryAfter(err))
	}
	var werr error
	switch {
	case wantsJSON(req):
		if status == http.StatusUnauthorized {
			h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="profilecache"`)
		}
		werr = c.JSON(status, errorJSON{Error: message})
	case status == http.StatusUnauthorized:
		werr = c.Redirect(http.StatusSeeOther, "/login")
	default:
		werr = s.renderErrorPage(c, status, message)
	}
	if werr != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "write error response", slog.String("request_id", requestID(c)), slog.Any("err", werr))
	}
}

// wantsJSON reports whether errors for r should be JSON: everything under
// /api/ and /internal/, forward auth (a proxy must get its 401, never a
// redirect), and clients that accept JSON but not HTML.
func wantsJSON(r *http.Request) bool {
	if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/internal/") || isForwardAuth(r.URL.Path) {
		return true
	}
	json, html := false, false
	for _, part := range strings.Split(r.Header.Get(echo.HeaderAccept), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json"):
			json = true
		case mt == echo.MIMETextHTML || mt == "application/xhtml+xml":
			html = true
		}
	}
	return json && !html
}

// errorHeadings are the page titles of the friendly error page.
var errorHeadings = map[int]string{
	http.StatusBadRequest:            "That request didn't look right",
	http.StatusForbidden:             "That action was blocked",
	http.StatusNotFound:              "Page not found",
	http.StatusMethodNotAllowed:      "That action isn't possible here",
	http.StatusRequestTimeout:        "That took too long",
	http.StatusConflict:              "That didn't work",
	http.StatusRequestEntityTooLarge: "That was too much data",
	http.StatusUnsupportedMediaType:  "That request didn't look right",
	http.StatusTooManyRequests:       "Too many attempts",
	http.StatusServiceUnavailable:    "We'll be right back",
}

// errorSentences explain a status to a person; statuses without one show
// the (client-safe) message instead.
var errorSentences = map[int]string{
	http.StatusNotFound:              "There is nothing at this address. It may have moved, or the link may be mistyped.",
	http.StatusMethodNotAllowed:      "This page can't be used that way.",
	http.StatusRequestEntityTooLarge: "The request was larger than this service accepts.",
	http.StatusTooManyRequests:       "There were too many sign-in attempts. Please wait a minute and try again.",
	http.StatusServiceUnavailable:    "The service is briefly unavailable. Please try again in a moment.",
	http.StatusInternalServerError:   "Something went wrong on our side. Please try again in a moment.",
}

func (s *Server) renderErrorPage(c echo.Context, status int, message string) error {
	heading, ok := errorHeadings[status]
	if !ok {
		heading = "Something went wrong"
	}
	if sentence, ok := errorSentences[status]; ok {
		message = sentence
	} else {
		message = capitalize(message) + "."
	}
	page := errorPage{
		basePage: s.newBasePage(c, heading),
		Status:   status,
		Heading:  heading,
		Message:  message,
	}
	if err := c.Render(status, "error", page); err != nil {
		// The page was rendered into a buffer, so nothing was sent yet.
		s.log.ErrorContext(c.Request().Context(), "render error page", "request_id", requestID(c), "err", err)
		return c.HTMLBlob(status, s.fallbackPage)
	}
	return nil
}

// retryAfter is the Retry-After header for err: the wait an error that
// knows it supplies (a refresh cooldown, a login throttle), in whole
// seconds rounded up, at least 1; else 1.
func retryAfter(err error) string {
	var ra interface{ RetryAfter() time.Duration }
	secs := 1.0
	if errors.As(err, &ra) {
		secs = max(1, math.Ceil(ra.RetryAfter().Seconds()))
	}
	return strconv.FormatFloat(secs, 'f', 0, 64)
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func requestID(c echo.Context) string {
	if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
		return id
	}
	return c.Request().Header.Get(echo.HeaderXRequestID)
}

// badRequest is a 400 whose message the client sees.
func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}
