package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name           string
		err            error
		wantStatus     int
		wantAPIMessage string
		wantPageText   string
		wantRetry      bool
	}{
		{"Unavailable", fmt.Errorf("load: %w", profile.ErrUnavailable), 503, "temporarily unavailable, try again shortly", "briefly unavailable", true},
		{"DeadlineExceeded", fmt.Errorf("load: %w", context.DeadlineExceeded), 503, "temporarily unavailable, try again shortly", "briefly unavailable", true},
		{"NotFound", fmt.Errorf("read: %w", profile.ErrNotFound), 404, "not found", "Page not found", false},
		{"InvalidPage", fmt.Errorf("read: %w", profile.ErrInvalidPage), 400, "invalid page: offset must be 0 or more and limit 1 to 100", "Invalid page", false},
		{"DataFull", profile.ErrDataFull, 409, "session data is full: delete a key first", "Session data is full", false},
		{"DataBudget", fmt.Errorf("put: %w", &profile.DataBudgetError{Budget: 262144}), 413, "session data would exceed 262144 bytes: delete keys first", "larger than this service accepts", false},
		{"DataBudgetBare", profile.ErrDataBudget, 413, "session data would exceed its size limit: delete keys first", "larger than this service accepts", false},
		{"HTTPErrorPassesThrough", echo.NewHTTPError(http.StatusTeapot, "short and stout"), 418, "short and stout", "Short and stout", false},
		{"HTTPError500IsGeneric", echo.NewHTTPError(http.StatusInternalServerError, "db password is hunter2"), 500, "internal error", "Something went wrong on our side", false},
		{"Unknown", errBoom, 500, "internal error", "Something went wrong on our side", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.profiles.setErr(tc.err)
			// Errors GET /api/me never meets, so only their shape is checked.
			env.holdTo(openapitest.Options{InjectedErrors: true})

			api := env.do(t, request{path: "/api/me", user: zoeID})
			if got, want := api.Code, tc.wantStatus; got != want {
				t.Errorf("API status = %d, want %d", got, want)
			}
			if got, want := errorBody(t, api), tc.wantAPIMessage; got != want {
				t.Errorf("API error = %q, want %q", got, want)
			}

			page := env.do(t, request{path: "/profile", user: zoeID})
			if got, want := page.Code, tc.wantStatus; got != want {
				t.Errorf("page status = %d, want %d", got, want)
			}
			if got, want := page.Header().Get("Content-Type"), "text/html; charset=UTF-8"; got != want {
				t.Errorf("page Content-Type = %q, want %q", got, want)
			}
			for _, s := range []string{tc.wantPageText, fmt.Sprintf("Error %d", tc.wantStatus), `href="/"`} {
				if !strings.Contains(page.Body.String(), s) {
					t.Errorf("page does not contain %q:\n%s", s, page.Body)
				}
			}

			for _, rec := range []*httptest.ResponseRecorder{api, page} {
				if got := rec.Header().Get("Retry-After"); (got == "1") != tc.wantRetry {
					t.Errorf("Retry-After = %q, want it set: %v", got, tc.wantRetry)
				}
				for _, secret := range []string{"10.9.8.7", "hunter2", "secret internal detail"} {
					if strings.Contains(rec.Body.String(), secret) {
						t.Errorf("response leaks %q: %s", secret, rec.Body)
					}
				}
			}
		})
	}
}

// TestErrorLogging: 5xx are logged at ERROR with the wrapped error, 4xx at
// INFO.
func TestErrorLogging(t *testing.T) {
	env := newTestEnv(t)
	env.profiles.setErr(fmt.Errorf("read profile: %w", errBoom))
	env.do(t, request{path: "/api/me", user: zoeID})
	logs := env.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "secret internal detail") {
		t.Errorf("500 not logged at ERROR with its cause:\n%s", logs)
	}

	env = newTestEnv(t)
	env.do(t, request{path: "/api/me"})
	logs = env.logs.String()
	if !strings.Contains(logs, `level=INFO msg="request failed"`) || strings.Contains(logs, "level=ERROR") {
		t.Errorf("401 not logged at INFO:\n%s", logs)
	}
}

// panickingProfiles panics on Read, like a handler bug would.
type panickingProfiles struct{ *fakeProfiles }

func (panickingProfiles) Read(context.Context, uuid.UUID, profile.Query) (profile.View, error) {
	panic("boom: 10.9.8.7")
}

func TestPanic(t *testing.T) {
	env := newTestEnv(t, func(c *web.Config) { c.Profiles = panickingProfiles{newFakeProfiles()} })
	for _, path := range []string{"/api/me", "/profile"} {
		rec := env.do(t, request{path: path, user: zoeID})
		if got, want := rec.Code, http.StatusInternalServerError; got != want {
			t.Errorf("%s: status = %d, want %d", path, got, want)
		}
		if strings.Contains(rec.Body.String(), "10.9.8.7") {
			t.Errorf("%s: panic value leaked: %s", path, rec.Body)
		}
	}
	if logs := env.logs.String(); !strings.Contains(logs, "panic") || !strings.Contains(logs, "10.9.8.7") {
		t.Errorf("panic not logged:\n%s", logs)
	}
}

func TestBodyLimit(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	for _, tc := range []struct {
		name   string
		req    request
		isJSON bool
	}{
		{"APILogin", request{method: http.MethodPost, path: "/api/login", body: string(big), header: map[string]string{"Content-Type": "application/json"}}, true},
		{"SessionData", request{method: http.MethodPut, path: "/api/session/data/k", user: zoeID, body: string(big), header: map[string]string{"Authorization": "Bearer t"}}, true},
		{"FormLogin", request{method: http.MethodPost, path: "/login", body: string(big), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, tc.req)
			if got, want := rec.Code, http.StatusRequestEntityTooLarge; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			if tc.isJSON {
				errorBody(t, rec)
			} else if !strings.Contains(rec.Body.String(), "too much data") {
				t.Errorf("page does not explain the 413:\n%s", rec.Body)
			}
		})
	}
}
