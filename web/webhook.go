package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// ProfileChanges takes the CRM's word that a user's data changed.
// Implemented by *profile.Service.
type ProfileChanges interface {
	// ProfileChanged makes every session of the user see the backend's
	// current data from its next request on.
	ProfileChanged(ctx context.Context, userID uuid.UUID) error
}

var _ ProfileChanges = (*profile.Service)(nil)

const (
	routeProfileChanged = "/internal/profile-changed"
	// HeaderWebhookSecret carries the shared secret of the webhook.
	HeaderWebhookSecret = "X-Webhook-Secret"
	// MinWebhookSecretLen is the shortest accepted webhook secret.
	MinWebhookSecretLen = 16
)

// webhookRoutes registers POST /internal/profile-changed when a secret is
// configured; without one the route does not exist (404). It has no session
// and no CSRF token (csrf.go): the shared secret is its authentication.
func (s *Server) webhookRoutes(e *echo.Echo) {
	if s.cfg.WebhookSecret == "" || s.cfg.Changes == nil {
		return
	}
	e.POST(routeProfileChanged, s.handleProfileChanged)
}

// handleProfileChanged: the CRM says that a user's data changed. Body
// {"user_id": "<uuid>"} or query ?user_id=<uuid>. 204 once the cached
// profile is dropped (the user's next request, in any session, loads the
// new data once), 401 for a wrong secret, 400 for a bad body.
func (s *Server) handleProfileChanged(c echo.Context) error {
	if !s.webhookSecretOK(c.Request().Header.Get(HeaderWebhookSecret)) {
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong "+HeaderWebhookSecret)
	}
	userID, err := webhookUserID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.cfg.Changes.ProfileChanged(ctx, userID); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "profile changed: cached profile dropped", "user", userID)
	return c.NoContent(http.StatusNoContent)
}

// webhookSecretOK compares in constant time; hashing first makes the time
// independent of the lengths too.
func (s *Server) webhookSecretOK(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.cfg.WebhookSecret))
	return got != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// maxWebhookBody bounds the JSON body; {"user_id": "<uuid>"} is 50 bytes.
const maxWebhookBody = 4 << 10

func webhookUserID(c echo.Context) (uuid.UUID, error) {
	req := c.Request()
	fromQuery := c.QueryParam("user_id")
	var fromBody string
	body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody+1))
	if err != nil {
		return uuid.Nil, badRequest("could not read the body")
	}
	if len(body) > maxWebhookBody {
		return uuid.Nil, badRequest("body too large: send {\"user_id\": \"<uuid>\"}")
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
			return uuid.Nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON: Content-Type: application/json")
		}
		var in struct {
			UserID *string `json:"user_id"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return uuid.Nil, badRequest("invalid JSON: send {\"user_id\": \"<uuid>\"}")
		}
		if in.UserID == nil {
			return uuid.Nil, badRequest("missing user_id")
		}
		fromBody = *in.UserID
	}
	raw := fromBody
	switch {
	case fromBody == "" && fromQuery == "":
		return uuid.Nil, badRequest("missing user_id: send {\"user_id\": \"<uuid>\"} or ?user_id=<uuid>")
	case fromBody == "":
		raw = fromQuery
	case fromQuery != "" && fromQuery != fromBody:
		return uuid.Nil, badRequest("user_id in the query and the body differ")
	}
	id, err := uuid.Parse(raw)
	if err != nil || id == uuid.Nil || id.String() != strings.ToLower(raw) {
		return uuid.Nil, badRequest("user_id is not a user id (a canonical uuid)")
	}
	return id, nil
}

// errWebhookConfig is returned by New for a webhook secret that is too short.
var errWebhookConfig = errors.New("web: config: WebhookSecret must be at least 16 bytes")
