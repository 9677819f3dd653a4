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

// ProfileChanges takes the CRM's word about a user. Implemented by
// *profile.Service.
type ProfileChanges interface {
	// ProfileChanged makes every session of the user see the backend's
	// current data from its next request on.
	ProfileChanged(ctx context.Context, userID uuid.UUID) error
	// CredentialsChanged ends every session of the user at once (password
	// changed, account locked) and says how many were live.
	CredentialsChanged(ctx context.Context, userID uuid.UUID) (int, error)
	// Erase deletes every key of the user and ends every session.
	Erase(ctx context.Context, userID uuid.UUID) error
}

// Webhook events (the "event" field). An absent event is eventProfileChanged,
// as before events existed.
const (
	eventProfileChanged     = "profile_changed"
	eventCredentialsChanged = "credentials_changed"
	eventErased             = "erased"
)

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

// handleProfileChanged: the CRM tells about a user. Body {"user_id":
// "<uuid>", "event": "<event>"} (or query ?user_id=&event=), event one of
//   - profile_changed (the default): the cached profile is dropped, and the
//     user's next request, in any session, loads the new data once;
//   - credentials_changed: every session of the user ends at once;
//   - erased: every key of the user is deleted and every session ends.
//
// 204 once done, 401 for a wrong secret, 400 for a bad body, 503 when Redis
// could not confirm (the CRM retries).
func (s *Server) handleProfileChanged(c echo.Context) error {
	if !s.webhookSecretOK(c.Request().Header.Get(HeaderWebhookSecret)) {
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong "+HeaderWebhookSecret)
	}
	in, err := webhookInput(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch in.event {
	case eventProfileChanged:
		if err := s.cfg.Changes.ProfileChanged(ctx, in.userID); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "profile changed: cached profile dropped", "user", in.userID)
	case eventCredentialsChanged:
		n, err := s.cfg.Changes.CredentialsChanged(ctx, in.userID)
		if err != nil {
			return err
		}
		s.log.InfoContext(ctx, "credentials changed: every session ended", "user", in.userID, "sessions", n)
	case eventErased:
		if err := s.cfg.Changes.Erase(ctx, in.userID); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "user erased: every key deleted, every session ended", "user", in.userID)
	}
	return c.NoContent(http.StatusNoContent)
}

// webhookSecretOK compares in constant time; hashing first makes the time
// independent of the lengths too.
func (s *Server) webhookSecretOK(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.cfg.WebhookSecret))
	return got != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// maxWebhookBody bounds the JSON body; {"user_id": "<uuid>", "event":
// "credentials_changed"} is 85 bytes.
const maxWebhookBody = 4 << 10

// webhookRequest is what a webhook call asks for.
type webhookRequest struct {
	userID uuid.UUID
	event  string
}

func webhookInput(c echo.Context) (webhookRequest, error) {
	req := c.Request()
	var in struct {
		UserID *string `json:"user_id"`
		Event  *string `json:"event"`
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody+1))
	if err != nil {
		return webhookRequest{}, badRequest("could not read the body")
	}
	if len(body) > maxWebhookBody {
		return webhookRequest{}, badRequest("body too large: send {\"user_id\": \"<uuid>\", \"event\": \"<event>\"}")
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
			return webhookRequest{}, echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON: Content-Type: application/json")
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return webhookRequest{}, badRequest("invalid JSON: send {\"user_id\": \"<uuid>\", \"event\": \"<event>\"}")
		}
		if in.UserID == nil {
			return webhookRequest{}, badRequest("missing user_id")
		}
	}
	rawID, err := oneOf("user_id", in.UserID, c.QueryParam("user_id"))
	if err != nil {
		return webhookRequest{}, err
	}
	if rawID == "" {
		return webhookRequest{}, badRequest("missing user_id: send {\"user_id\": \"<uuid>\"} or ?user_id=<uuid>")
	}
	id, err := uuid.Parse(rawID)
	if err != nil || id == uuid.Nil || id.String() != strings.ToLower(rawID) {
		return webhookRequest{}, badRequest("user_id is not a user id (a canonical uuid)")
	}
	event, err := oneOf("event", in.Event, c.QueryParam("event"))
	if err != nil {
		return webhookRequest{}, err
	}
	switch event {
	case "":
		event = eventProfileChanged
	case eventProfileChanged, eventCredentialsChanged, eventErased:
	default:
		return webhookRequest{}, badRequest("unknown event: want %s, %s or %s", eventProfileChanged, eventCredentialsChanged, eventErased)
	}
	return webhookRequest{userID: id, event: event}, nil
}

// oneOf is a webhook parameter given in the body, the query or both (then
// they must agree); "" when given nowhere.
func oneOf(name string, fromBody *string, fromQuery string) (string, error) {
	switch {
	case fromBody == nil || *fromBody == "":
		return fromQuery, nil
	case fromQuery != "" && fromQuery != *fromBody:
		return "", badRequest("%s in the query and the body differ", name)
	}
	return *fromBody, nil
}

// errWebhookConfig is returned by New for a webhook secret that is too short.
var errWebhookConfig = errors.New("web: config: WebhookSecret must be at least 16 bytes")
