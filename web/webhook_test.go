package web_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

const webhookSecret = "webhook-secret-0123456789"

// fakeChanges records webhook calls as "<event> <user id>".
type fakeChanges struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeChanges) record(event string, id uuid.UUID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls = append(f.calls, event+" "+id.String())
	return nil
}

func (f *fakeChanges) ProfileChanged(_ context.Context, id uuid.UUID) error {
	return f.record("profile_changed", id)
}

func (f *fakeChanges) CredentialsChanged(_ context.Context, id uuid.UUID) (int, error) {
	return 2, f.record("credentials_changed", id)
}

func (f *fakeChanges) Erase(_ context.Context, id uuid.UUID) error {
	return f.record("erased", id)
}

func (f *fakeChanges) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func TestProfileChangedWebhook(t *testing.T) {
	good := map[string]string{web.HeaderWebhookSecret: webhookSecret, "Content-Type": "application/json"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	body := fmt.Sprintf(`{"user_id":%q}`, zoeID)
	tests := []struct {
		name       string
		req        request
		changesErr error
		wantStatus int
		wantBody   string // in the response
		wantCalled bool
		wantEvent  string // default profile_changed
	}{
		{name: "credentials changed", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":"credentials_changed"}`, zoeID), header: good},
			wantStatus: http.StatusNoContent, wantCalled: true, wantEvent: "credentials_changed"},
		{name: "erased", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":"erased"}`, zoeID), header: good},
			wantStatus: http.StatusNoContent, wantCalled: true, wantEvent: "erased"},
		{name: "event in the query", req: request{method: "POST", path: "?event=erased&user_id=" + zoeID.String(), header: map[string]string{web.HeaderWebhookSecret: webhookSecret}},
			wantStatus: http.StatusNoContent, wantCalled: true, wantEvent: "erased"},
		{name: "explicit profile_changed", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":"profile_changed"}`, zoeID), header: good},
			wantStatus: http.StatusNoContent, wantCalled: true},
		{name: "unknown event", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":"deleted"}`, zoeID), header: good},
			wantStatus: http.StatusBadRequest, wantBody: "unknown event"},
		{name: "events differ", req: request{method: "POST", path: "?event=erased", body: fmt.Sprintf(`{"user_id":%q,"event":"credentials_changed"}`, zoeID), header: good},
			wantStatus: http.StatusBadRequest, wantBody: "differ"},
		{name: "event not a string", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":1}`, zoeID), header: good},
			wantStatus: http.StatusBadRequest, wantBody: "invalid JSON"},
		{name: "erase, store down", req: request{method: "POST", body: fmt.Sprintf(`{"user_id":%q,"event":"erased"}`, zoeID), header: good},
			changesErr: fmt.Errorf("redis: %w", profile.ErrUnavailable), wantStatus: http.StatusServiceUnavailable},
		{name: "json body", req: request{method: "POST", body: body, header: good},
			wantStatus: http.StatusNoContent, wantCalled: true},
		{name: "query", req: request{method: "POST", path: "?user_id=" + zoeID.String(), header: map[string]string{web.HeaderWebhookSecret: webhookSecret}},
			wantStatus: http.StatusNoContent, wantCalled: true},
		{name: "upper-case uuid value", req: request{method: "POST", body: `{"user_id":"` + strings.ToUpper(zoeID.String()) + `"}`, header: good},
			wantStatus: http.StatusNoContent, wantCalled: true},
		{name: "query and body agree", req: request{method: "POST", path: "?user_id=" + zoeID.String(), body: body, header: good},
			wantStatus: http.StatusNoContent, wantCalled: true},
		{name: "query and body differ", req: request{method: "POST", path: "?user_id=" + bobID.String(), body: body, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "differ"},
		{name: "no secret", req: request{method: "POST", body: body, header: map[string]string{"Content-Type": "application/json"}},
			wantStatus: http.StatusUnauthorized, wantBody: "X-Webhook-Secret"},
		{name: "wrong secret", req: request{method: "POST", body: body, header: with(good, web.HeaderWebhookSecret, webhookSecret+"x")},
			wantStatus: http.StatusUnauthorized, wantBody: "X-Webhook-Secret"},
		{name: "secret prefix", req: request{method: "POST", body: body, header: with(good, web.HeaderWebhookSecret, webhookSecret[:10])},
			wantStatus: http.StatusUnauthorized},
		{name: "bad json", req: request{method: "POST", body: `{"user_id":`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "invalid JSON"},
		{name: "no user_id", req: request{method: "POST", body: `{}`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "missing user_id"},
		{name: "empty body", req: request{method: "POST", header: good},
			wantStatus: http.StatusBadRequest, wantBody: "missing user_id"},
		{name: "not a uuid", req: request{method: "POST", body: `{"user_id":"alice"}`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "not a user id"},
		{name: "nil uuid", req: request{method: "POST", body: `{"user_id":"` + uuid.Nil.String() + `"}`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "not a user id"},
		{name: "uuid in braces", req: request{method: "POST", body: `{"user_id":"{` + zoeID.String() + `}"}`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "not a user id"},
		{name: "form body", req: request{method: "POST", body: "user_id=" + zoeID.String(),
			header: with(good, "Content-Type", "application/x-www-form-urlencoded")},
			wantStatus: http.StatusUnsupportedMediaType},
		{name: "huge body", req: request{method: "POST", body: `{"user_id":"` + strings.Repeat("a", 8000) + `"}`, header: good},
			wantStatus: http.StatusBadRequest, wantBody: "too large"},
		{name: "GET", req: request{method: "GET", header: good}, wantStatus: http.StatusMethodNotAllowed},
		{name: "store down", req: request{method: "POST", body: body, header: good},
			changesErr: fmt.Errorf("redis: %w", profile.ErrUnavailable), wantStatus: http.StatusServiceUnavailable},
		// No session and no CSRF token needed, even when the browser says
		// the request is cross-site: the secret is the authentication.
		{name: "cross-site fetch with the secret", req: request{method: "POST", body: body, header: with(good, "Sec-Fetch-Site", "cross-site")},
			wantStatus: http.StatusNoContent, wantCalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := &fakeChanges{err: tt.changesErr}
			env := newTestEnv(t, func(c *web.Config) {
				c.Changes = changes
				c.WebhookSecret = webhookSecret
			})
			tt.req.path = "/internal/profile-changed" + tt.req.path
			rec := env.do(t, tt.req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status=%d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if rec.Code >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("error body %q is not JSON {\"error\": ...}", rec.Body)
				}
				if !strings.Contains(e.Error, tt.wantBody) {
					t.Errorf("error=%q, want it to say %q", e.Error, tt.wantBody)
				}
			}
			calls := changes.got()
			want := cmp.Or(tt.wantEvent, "profile_changed") + " " + zoeID.String()
			if tt.wantCalled && (len(calls) != 1 || calls[0] != want) {
				t.Fatalf("calls=%v, want [%s]", calls, want)
			}
			if !tt.wantCalled && len(calls) != 0 {
				t.Fatalf("calls=%v, want none", calls)
			}
		})
	}
}

// Without a secret the endpoint does not exist.
func TestProfileChangedWebhookDisabled(t *testing.T) {
	changes := &fakeChanges{}
	env := newTestEnv(t, func(c *web.Config) { c.Changes = changes })
	rec := env.do(t, request{method: "POST", path: "/internal/profile-changed",
		body: fmt.Sprintf(`{"user_id":%q}`, zoeID), header: map[string]string{web.HeaderWebhookSecret: "", "Content-Type": "application/json"}})
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("status=%d body=%s, want 404 JSON", rec.Code, rec.Body)
	}
	if len(changes.got()) != 0 {
		t.Fatal("ProfileChanged called on a disabled endpoint")
	}
}

func TestWebhookSecretTooShort(t *testing.T) {
	_, err := web.New(web.Config{
		Profiles: newFakeProfiles(), Sessions: newFakeSessions(), Data: newFakeData(), Authenticate: fakeAuthenticate,
		LoginByAddress: newFakeLimiter(1), LoginByAccount: newFakeLimiter(1),
		Changes: &fakeChanges{}, WebhookSecret: "short",
	})
	if err == nil || !strings.Contains(err.Error(), "WebhookSecret") {
		t.Fatalf("err=%v, want a WebhookSecret error", err)
	}
}

// A malformed CRM answer is a 503 that names the backend, never a 500.
func TestBadBackendResponseIs503(t *testing.T) {
	env := newTestEnv(t)
	env.profiles.setErr(fmt.Errorf("load profile: %w: crm: GET /users/x/orders: %w: invalid JSON", profile.ErrUnavailable, profile.ErrBadBackendResponse))
	rec := env.do(t, request{path: "/api/me", user: zoeID})
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "customer database sent an invalid response") {
		t.Fatalf("status=%d body=%s, want 503 naming the backend", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "invalid JSON") {
		t.Fatalf("body %s leaks the internal error", rec.Body)
	}
}
