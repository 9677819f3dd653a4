package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

// serverTestCase is one request against a fresh server and what must come
// back (pkgsite's serverTestCase).
type serverTestCase struct {
	name         string
	req          request
	setup        func(*testEnv)
	wantStatus   int
	wantLocation string
	wantBody     []string // substrings
	wantNotBody  []string
	wantHeader   map[string]string
}

func runServerTests(t *testing.T, cases []serverTestCase, mods ...func(*web.Config)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, mods...)
			if tc.setup != nil {
				tc.setup(env)
			}
			rec := env.do(t, tc.req)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Errorf("%s %s: status = %d, want %d; body:\n%s", tc.req.method, tc.req.path, got, want, rec.Body)
			}
			if got, want := rec.Header().Get("Location"), tc.wantLocation; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			body := rec.Body.String()
			for _, s := range tc.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("body does not contain %q; body:\n%s", s, body)
				}
			}
			for _, s := range tc.wantNotBody {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q, want it absent; body:\n%s", s, body)
				}
			}
			for k, want := range tc.wantHeader {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	full := func() web.Config {
		return web.Config{
			Profiles: newFakeProfiles(), Sessions: newFakeSessions(), Data: newFakeData(), Authenticate: fakeAuthenticate,
			LoginByAddress: newFakeLimiter(1), LoginByAccount: newFakeLimiter(1),
		}
	}
	for _, tc := range []struct {
		name    string
		mod     func(*web.Config)
		wantErr string
	}{
		{"OK", func(*web.Config) {}, ""},
		{"NoProfiles", func(c *web.Config) { c.Profiles = nil }, "Profiles is required"},
		{"NoSessions", func(c *web.Config) { c.Sessions = nil }, "Sessions is required"},
		{"NoData", func(c *web.Config) { c.Data = nil }, "Data is required"},
		{"NoAuthenticate", func(c *web.Config) { c.Authenticate = nil }, "Authenticate is required"},
		// No silent fallback to a limit in one process's memory.
		{"NoAddressLimiter", func(c *web.Config) { c.LoginByAddress = nil }, "LoginByAddress and LoginByAccount are required"},
		{"NoAccountLimiter", func(c *web.Config) { c.LoginByAccount = nil }, "LoginByAddress and LoginByAccount are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full()
			tc.mod(&cfg)
			_, err := web.New(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	runServerTests(t, []serverTestCase{
		{
			name:         "RootRedirectsToProfile",
			req:          request{path: "/"},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/profile",
		},
		{
			name:       "Healthz",
			req:        request{path: "/healthz"},
			wantStatus: http.StatusOK,
			wantBody:   []string{`"status":"ok"`},
		},
		{
			name:       "ReadyzWithoutCheck",
			req:        request{path: "/readyz"},
			wantStatus: http.StatusOK,
			wantBody:   []string{`"status":"ready"`},
		},
		{
			name:       "MetricsNotConfigured",
			req:        request{path: "/metrics"},
			setup:      func(env *testEnv) { env.holdTo(openapitest.Options{Unconfigured: true}) },
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "Stylesheet",
			req:        request{path: "/static/style.css"},
			wantStatus: http.StatusOK,
			wantBody:   []string{":focus-visible"},
			wantHeader: map[string]string{"Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=86400"},
		},
		{
			name:       "StaticMissing",
			req:        request{path: "/static/nope.css"},
			wantStatus: http.StatusNotFound,
			wantHeader: map[string]string{"Cache-Control": "no-store"},
		},
		{
			name:        "StaticNoTraversal",
			req:         request{path: "/static/../templates/layout.html"},
			wantStatus:  http.StatusNotFound,
			wantNotBody: []string{`{{define`},
		},
		{
			name:        "StaticNoDirectoryListing",
			req:         request{path: "/static/"},
			wantStatus:  http.StatusNotFound,
			wantNotBody: []string{`href="style.css"`},
		},
		{
			name:       "UnknownPage",
			req:        request{path: "/nope"},
			wantStatus: http.StatusNotFound,
			wantBody:   []string{"Page not found", `href="/"`},
		},
		{
			name:       "UnknownAPI",
			req:        request{path: "/api/nope", user: zoeID},
			wantStatus: http.StatusNotFound,
			wantBody:   []string{`{"error":`},
		},
		{
			name:       "WrongMethodPage",
			req:        request{method: http.MethodGet, path: "/logout"},
			wantStatus: http.StatusMethodNotAllowed,
			wantBody:   []string{"Error 405"},
		},
		{
			name:       "WrongMethodAPI",
			req:        request{method: http.MethodGet, path: "/api/login"},
			wantStatus: http.StatusMethodNotAllowed,
			wantBody:   []string{`{"error":`},
		},
		{
			name:       "JSONClientGetsJSONErrors",
			req:        request{path: "/nope", header: map[string]string{"Accept": "application/json"}},
			wantStatus: http.StatusNotFound,
			wantBody:   []string{`{"error":`},
		},
		{
			name:         "AnonymousProfileRedirects",
			req:          request{path: "/profile"},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
		{
			name:         "AnonymousSessionsRedirects",
			req:          request{path: "/sessions"},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
		{
			name:       "AnonymousAPIMe",
			req:        request{path: "/api/me"},
			wantStatus: http.StatusUnauthorized,
			wantBody:   []string{`{"error":"authentication required"}`},
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="profilecache"`},
		},
		{
			name:       "AnonymousAPILogout",
			req:        request{method: http.MethodPost, path: "/api/logout", header: map[string]string{"Authorization": "Bearer nope"}},
			wantStatus: http.StatusUnauthorized,
			wantBody:   []string{`"error"`},
		},
		{
			name:       "AuthStoreDownIs503",
			req:        request{path: "/api/me", header: map[string]string{hdrAuthError: "unavailable"}},
			wantStatus: http.StatusServiceUnavailable,
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name:       "AuthStoreDownPageIs503NotRedirect",
			req:        request{path: "/profile", header: map[string]string{hdrAuthError: "unavailable"}},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   []string{"briefly unavailable"},
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name:       "APIMe",
			req:        request{path: "/api/me", user: zoeID},
			wantStatus: http.StatusOK,
			wantBody: []string{
				`"id":"11111111-1111-4111-8111-111111111111"`, `"first_name":"Zoë"`, `"last_name":"Ångström"`,
				`"email":"zoe@example.com"`, `"phone":"+49 30 1234567"`, `"address_line":"Großbeerenstraße 1"`,
				`"postal_code":"10963"`, `"city":"Berlin"`, `"country":"DE"`, `"marketing_permission":true`,
				`"created":"2026-01-02T10:30:00Z"`,
			},
			wantHeader: map[string]string{"Cache-Control": "no-store"},
		},
		{
			name:       "APIInterests",
			req:        request{path: "/api/me/interests", user: zoeID},
			wantStatus: http.StatusOK,
			wantBody:   []string{`["cycling","jazz","küche","books"]`},
		},
		{
			name:        "APIInterestsEmptyIsArray",
			req:         request{path: "/api/me/interests", user: bobID},
			wantStatus:  http.StatusOK,
			wantBody:    []string{"[]"},
			wantNotBody: []string{"null"},
		},
		{
			name:       "APIOrdersEmptyIsArray",
			req:        request{path: "/api/me/orders", user: bobID},
			wantStatus: http.StatusOK,
			wantBody:   []string{`{"items":[],"offset":0,"limit":20,"total":0}`},
		},
		{
			name:       "APIRefresh",
			req:        request{method: http.MethodPost, path: "/api/me/refresh", user: zoeID, csrf: true},
			wantStatus: http.StatusNoContent,
		},
		{
			name:       "APIRefreshBearerNeedsNoCSRF",
			req:        request{method: http.MethodPost, path: "/api/me/refresh", user: zoeID, header: map[string]string{"Authorization": "Bearer t"}},
			wantStatus: http.StatusNoContent,
		},
	})
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ready      func(context.Context) error
		wantStatus int
		wantBody   string
	}{
		{"Ready", func(context.Context) error { return nil }, http.StatusOK, `{"status":"ready"}`},
		{"NotReady", func(context.Context) error { return errBoom }, http.StatusServiceUnavailable, `{"status":"unavailable"}`},
		{"Deadline", func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return nil
		}, http.StatusOK, `{"status":"ready"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *web.Config) { c.Ready = tc.ready })
			rec := env.do(t, request{path: "/readyz"})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := strings.TrimSpace(rec.Body.String()), tc.wantBody; got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
			if strings.Contains(rec.Body.String(), "10.9.8.7") {
				t.Errorf("body leaks the internal error: %s", rec.Body)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("profilecache_up 1\n"))
	})
	env := newTestEnv(t, func(c *web.Config) { c.Metrics = metrics })
	rec := env.do(t, request{path: "/metrics"})
	if got, want := rec.Code, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	if got, want := rec.Body.String(), "profilecache_up 1\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if c := cookie(rec, web.CSRFCookieName); c != nil {
		t.Errorf("/metrics sets a CSRF cookie: %v", c)
	}
}

// TestHandlersReadOnlyWhatTheyShow checks the Query each handler sends.
func TestHandlersReadOnlyWhatTheyShow(t *testing.T) {
	page := func(o, l int) string { return pageString(o, l) }
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/api/me", []string{"basic"}},
		{"/api/me/interests", []string{"interests"}},
		{"/api/me/orders?offset=5&limit=7", []string{"orders" + page(5, 7)}},
		{"/api/me/invoices", []string{"invoices" + page(0, 20)}},
		{"/api/me/inquiries?limit=100", []string{"inquiries" + page(0, 100)}},
		{"/profile", []string{"basic interests orders" + page(0, 20) + " invoices" + page(0, 20) + " inquiries" + page(0, 20)}},
		{"/profile?page=3", []string{"basic interests orders" + page(40, 20) + " invoices" + page(0, 20) + " inquiries" + page(0, 20)}},
		{"/sessions", []string{"basic"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, request{path: tc.path, user: zoeID})
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			var got []string
			for _, q := range env.profiles.lastQueries() {
				got = append(got, queryString(q))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("queries = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParamsAreDecoded: echo leaves path parameters escaped when the URL
// has escapes like %2F; the handlers see the decoded value.
func TestParamsAreDecoded(t *testing.T) {
	env := newTestEnv(t)
	auth := map[string]string{"Authorization": "Bearer t"}
	key := "cart/a b"
	rec := env.do(t, request{method: http.MethodPut, path: "/api/session/data/" + url.PathEscape(key), user: zoeID, header: auth, body: "v"})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("PUT status = %d, want 204; body %s", rec.Code, rec.Body)
	}
	if _, err := env.data.GetData(context.Background(), zoeID, currentSession, key); err != nil {
		t.Errorf("stored under another key than %q: %v", key, err)
	}
}

func pageString(offset, limit int) string { return fmt.Sprintf("{%d,%d}", offset, limit) }

// queryString is a compact form of q for comparisons: "basic orders{0,20}".
func queryString(q profile.Query) string {
	var parts []string
	if q.Basic {
		parts = append(parts, "basic")
	}
	if q.Interests {
		parts = append(parts, "interests")
	}
	for _, p := range []struct {
		name string
		page *profile.Page
	}{{"orders", q.Orders}, {"invoices", q.Invoices}, {"inquiries", q.Inquiries}} {
		if p.page != nil {
			parts = append(parts, p.name+pageString(p.page.Offset, p.page.Limit))
		}
	}
	return strings.Join(parts, " ")
}
