package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/profilecache/profilecache/auth"
)

// Every credential check reports exactly one outcome through OnValidate.
func TestOnValidateOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		given func(t *testing.T, e *env, iss auth.Issued) *http.Request
		want  string
	}{
		{"live session", func(_ *testing.T, _ *env, iss auth.Issued) *http.Request {
			return cookieRequest(auth.DefaultCookieName, iss.Token)
		}, auth.OutcomeOK},
		{"no credential", func(*testing.T, *env, auth.Issued) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/api/me", nil)
		}, auth.OutcomeMissing},
		{"garbage token", func(*testing.T, *env, auth.Issued) *http.Request {
			return bearerRequest("not-a-jwt")
		}, auth.OutcomeInvalid},
		{"malformed header", func(*testing.T, *env, auth.Issued) *http.Request {
			req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
			req.Header.Set("Authorization", "Basic abc")
			return req
		}, auth.OutcomeInvalid},
		{"signed with a foreign key", func(t *testing.T, e *env, iss auth.Issued) *http.Request {
			hdr, cl := parseUnverified(t, iss.Token)
			return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, []byte(strings.Repeat("x", 40)), map[string]any{"kid": hdr["kid"]}))
		}, auth.OutcomeForged},
		{"tampered signature", func(_ *testing.T, _ *env, iss auth.Issued) *http.Request {
			return bearerRequest(replaceSegment(iss.Token, 2, "AAAA"))
		}, auth.OutcomeForged},
		{"unknown key id", func(t *testing.T, e *env, iss auth.Issued) *http.Request {
			_, cl := parseUnverified(t, iss.Token)
			return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, testSecret, map[string]any{"kid": "nope"}))
		}, auth.OutcomeForged},
		{"JWT expired", func(_ *testing.T, e *env, iss auth.Issued) *http.Request {
			e.clock.Advance(13 * time.Hour)
			return bearerRequest(iss.Token)
		}, auth.OutcomeExpired},
		// The store's TTL ends an idle session: to the check it is gone.
		{"session idled out", func(_ *testing.T, e *env, iss auth.Issued) *http.Request {
			e.clock.Advance(21 * time.Minute)
			return bearerRequest(iss.Token)
		}, auth.OutcomeRevoked},
		{"session revoked", func(t *testing.T, e *env, iss auth.Issued) *http.Request {
			if err := e.m.Revoke(t.Context(), userA, iss.SessionID); err != nil {
				t.Fatal(err)
			}
			return bearerRequest(iss.Token)
		}, auth.OutcomeRevoked},
		{"store down", func(_ *testing.T, e *env, iss auth.Issued) *http.Request {
			e.store.setErr(&e.store.lookupErr, errStoreDown)
			return bearerRequest(iss.Token)
		}, auth.OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			e := newEnv(t, func(c *auth.Config) {
				c.OnValidate = func(outcome string) { got = append(got, outcome) }
			})
			iss := e.issue(t, userA)
			e.serve(tt.given(t, e, iss))
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("outcomes=%v, want [%s]", got, tt.want)
			}
		})
	}
}
