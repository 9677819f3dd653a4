package web

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// The per-session key/value data (a cart, a wizard's step). Values are raw
// bytes: whatever the client PUTs comes back verbatim from GET, whatever
// the Content-Type of the PUT was.

func (s *Server) handleAPIGetData(c echo.Context) error {
	userID, sessionID, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	key, err := dataKey(c)
	if err != nil {
		return err
	}
	value, err := s.cfg.Data.GetData(c.Request().Context(), userID, sessionID, key)
	if errors.Is(err, profile.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such key").WithInternal(err)
	}
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEOctetStream, value)
}

func (s *Server) handleAPIPutData(c echo.Context) error {
	userID, sessionID, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	key, err := dataKey(c)
	if err != nil {
		return err
	}
	value, err := readValue(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Data.PutData(c.Request().Context(), userID, sessionID, key, value); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleAPIDeleteData is idempotent: deleting a key that is not there is
// also a 204.
func (s *Server) handleAPIDeleteData(c echo.Context) error {
	userID, sessionID, err := sessionIdentity(c)
	if err != nil {
		return err
	}
	key, err := dataKey(c)
	if err != nil {
		return err
	}
	err = s.cfg.Data.DeleteData(c.Request().Context(), userID, sessionID, key)
	if err != nil && !errors.Is(err, profile.ErrNotFound) {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// dataKey is the decoded {key}: 1 to profile.MaxDataKeyBytes bytes of UTF-8.
func dataKey(c echo.Context) (string, error) {
	key, err := pathParam(c, "key")
	if err != nil {
		return "", err
	}
	switch {
	case key == "":
		return "", badRequest("the key must not be empty")
	case len(key) > profile.MaxDataKeyBytes:
		return "", badRequest("the key is longer than %d bytes", profile.MaxDataKeyBytes)
	case !utf8.ValidString(key):
		return "", badRequest("the key must be UTF-8")
	}
	return key, nil
}

var errValueTooLarge = echo.NewHTTPError(http.StatusRequestEntityTooLarge,
	"the value is larger than "+strconv.Itoa(profile.MaxDataValueBytes)+" bytes")

// readValue reads the request body, at most profile.MaxDataValueBytes.
func readValue(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > profile.MaxDataValueBytes {
		return nil, errValueTooLarge
	}
	value, err := io.ReadAll(io.LimitReader(r.Body, profile.MaxDataValueBytes+1))
	if err != nil {
		return nil, err // the global body limit's 413, or a broken connection
	}
	if len(value) > profile.MaxDataValueBytes {
		return nil, errValueTooLarge
	}
	return value, nil
}
