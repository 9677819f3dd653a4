package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

func TestLoginForm(t *testing.T) {
	runServerTests(t, []serverTestCase{
		{
			name:       "Anonymous",
			req:        request{path: "/login"},
			wantStatus: http.StatusOK,
			wantBody: []string{
				`<form method="post" action="/login"`, `<label for="email">`, `<label for="password">`,
				`name="_csrf" value="`, `type="password"`,
			},
			wantNotBody: []string{`id="login-error"`, `id="logout"`},
			wantHeader:  map[string]string{"Cache-Control": "no-store"},
		},
		{
			// Signed-in users may still see the form (to switch accounts).
			name:       "SignedIn",
			req:        request{path: "/login", user: zoeID},
			wantStatus: http.StatusOK,
			wantBody:   []string{`action="/login"`},
		},
	})
}

func TestLoginFormCSRFToken(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mod        func(*web.Config)
		wantCookie string
		wantSecure bool
	}{
		{"plain", nil, "pc_csrf", false},
		{"secure", func(c *web.Config) { c.CSRFCookieSecure = true }, "__Host-pc_csrf", true},
		{"https via a trusted proxy", func(c *web.Config) {
			c.SecureRequest = func(r *http.Request) bool { return r.Header.Get("X-Test-HTTPS") == "1" }
		}, "__Host-pc_csrf", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*web.Config)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			env := newTestEnv(t, mods...)
			hdr := map[string]string{"X-Test-HTTPS": "1", "Sec-Fetch-Site": "none"}

			// The form carries the signed token of a fresh nonce cookie.
			rec := env.do(t, request{path: "/login", header: hdr})
			c := cookie(rec, tc.wantCookie)
			if c == nil {
				t.Fatalf("GET /login set no %s cookie; got %v", tc.wantCookie, rec.Result().Cookies())
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.Secure != tc.wantSecure {
				t.Errorf("CSRF cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, no Domain, Secure=%v", c, tc.wantSecure)
			}
			if want := fmt.Sprintf(`name="_csrf" value="%s"`, web.LoginCSRFToken(testCSRFKey, c.Value)); !strings.Contains(rec.Body.String(), want) {
				t.Errorf("form does not carry the cookie's signed token %s", want)
			}
			if strings.Contains(rec.Body.String(), c.Value) {
				t.Error("the page shows the cookie's nonce itself")
			}

			// Another login form in the same browser reuses the cookie, so
			// both forms work.
			req := httptest.NewRequest(http.MethodGet, "/login", nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			req.AddCookie(c)
			rec = httptest.NewRecorder()
			env.handler.ServeHTTP(rec, req)
			if got := rec.Result().Cookies(); len(got) != 0 {
				t.Errorf("second GET /login with the cookie set %v, want none", got)
			}
			if want := fmt.Sprintf(`name="_csrf" value="%s"`, web.LoginCSRFToken(testCSRFKey, c.Value)); !strings.Contains(rec.Body.String(), want) {
				t.Errorf("second form does not carry the same token")
			}
		})
	}
}

func TestLogin(t *testing.T) {
	form := func(email, password string) url.Values {
		return url.Values{"email": {email}, "password": {password}}
	}
	for _, tc := range []struct {
		name         string
		form         url.Values
		profilesErr  error
		wantStatus   int
		wantLocation string
		wantCookie   bool
		wantBody     []string
		wantNotBody  []string
	}{
		{
			name:         "OK",
			form:         form(zoeEmail, zoePassword),
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/profile",
			wantCookie:   true,
		},
		{
			name:         "OKTrimsEmail",
			form:         form("  "+zoeEmail+" ", zoePassword),
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/profile",
			wantCookie:   true,
		},
		{
			name:        "WrongPassword",
			form:        form(zoeEmail, "hunter2-wrong"),
			wantStatus:  http.StatusUnauthorized,
			wantBody:    []string{`<p id="login-error" class="alert" role="alert">Invalid email or password.</p>`, `value="zoe@example.com"`},
			wantNotBody: []string{"hunter2-wrong"},
		},
		{
			name:        "UnknownEmail",
			form:        form("nobody@example.com", "hunter2-wrong"),
			wantStatus:  http.StatusUnauthorized,
			wantBody:    []string{`<p id="login-error" class="alert" role="alert">Invalid email or password.</p>`, `value="nobody@example.com"`},
			wantNotBody: []string{"hunter2-wrong"},
		},
		{
			name:       "TooLongPassword",
			form:       form(zoeEmail, strings.Repeat("x", 5000)),
			wantStatus: http.StatusUnauthorized,
			wantBody:   []string{"Invalid email or password."},
		},
		{
			name:        "TooLongEmailNotEchoed",
			form:        form(strings.Repeat("e", 300)+"@example.com", "pw"),
			wantStatus:  http.StatusUnauthorized,
			wantBody:    []string{"Invalid email or password."},
			wantNotBody: []string{strings.Repeat("e", 300)},
		},
		{
			name:       "EmptyFields",
			form:       form("", ""),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"Enter your email and password."},
		},
		{
			name:        "BackendDown",
			form:        form(zoeEmail, zoePassword),
			profilesErr: fmt.Errorf("crm: %w", profile.ErrUnavailable),
			wantStatus:  http.StatusServiceUnavailable,
			wantBody:    []string{"briefly unavailable"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.profiles.setErr(tc.profilesErr)
			rec := env.do(t, request{
				method: http.MethodPost, path: "/login", form: tc.form, csrf: true,
				header: map[string]string{"User-Agent": "TestBrowser/1.0"},
			})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body:\n%s", got, want, rec.Body)
			}
			if got, want := rec.Header().Get("Location"), tc.wantLocation; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			c := cookie(rec, cookieName)
			if got, want := c != nil, tc.wantCookie; got != want {
				t.Errorf("session cookie set = %v, want %v (%v)", got, want, c)
			}
			if tc.wantCookie && env.sessions.userAgent != "TestBrowser/1.0" {
				t.Errorf("Issue got user agent %q, want %q", env.sessions.userAgent, "TestBrowser/1.0")
			}
			for _, s := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body does not contain %q", s)
				}
			}
			for _, s := range tc.wantNotBody {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("body contains %q", s)
				}
			}
		})
	}
}

// TestLoginSameAnswer: an unknown email and a wrong password must be
// indistinguishable, so the form cannot probe for accounts.
func TestLoginSameAnswer(t *testing.T) {
	env := newTestEnv(t)
	answer := func(email string) (int, string, []string) {
		rec := env.do(t, request{method: http.MethodPost, path: "/login", csrf: true,
			form: url.Values{"email": {email}, "password": {"wrong"}}})
		body := rec.Body.String()
		body = strings.ReplaceAll(body, email, "EMAIL")
		var cookies []string
		for _, c := range rec.Result().Cookies() {
			if c.Name != web.CSRFCookieName {
				cookies = append(cookies, c.Name)
			}
		}
		return rec.Code, body, cookies
	}
	knownCode, knownBody, knownCookies := answer(zoeEmail)
	unknownCode, unknownBody, unknownCookies := answer("nobody@example.com")
	if knownCode != unknownCode {
		t.Errorf("status: known email %d, unknown email %d; want equal", knownCode, unknownCode)
	}
	if knownBody != unknownBody {
		t.Errorf("bodies differ:\nknown:\n%s\nunknown:\n%s", knownBody, unknownBody)
	}
	if len(knownCookies)+len(unknownCookies) != 0 {
		t.Errorf("failed logins set cookies %v / %v, want none", knownCookies, unknownCookies)
	}
}

func TestAPILogin(t *testing.T) {
	const jsonType = "application/json"
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantError   string // substring of {"error"}
	}{
		{"OK", jsonType, `{"email":"zoe@example.com","password":"zoe-secret"}`, http.StatusOK, ""},
		{"OKWithCharset", "application/json; charset=utf-8", `{"email":"zoe@example.com","password":"zoe-secret"}`, http.StatusOK, ""},
		{"WrongPassword", jsonType, `{"email":"zoe@example.com","password":"nope"}`, http.StatusUnauthorized, "invalid email or password"},
		{"UnknownEmail", jsonType, `{"email":"nobody@example.com","password":"nope"}`, http.StatusUnauthorized, "invalid email or password"},
		{"FormContentType", "application/x-www-form-urlencoded", `email=zoe@example.com&password=zoe-secret`, http.StatusUnsupportedMediaType, "application/json"},
		{"TextContentType", "text/plain", `{"email":"zoe@example.com","password":"zoe-secret"}`, http.StatusUnsupportedMediaType, "application/json"},
		{"NoContentType", "", `{"email":"zoe@example.com","password":"zoe-secret"}`, http.StatusUnsupportedMediaType, "application/json"},
		{"BadJSON", jsonType, `{"email":`, http.StatusBadRequest, "not valid JSON"},
		{"Garbage", jsonType, `<xml/>`, http.StatusBadRequest, "not valid JSON"},
		{"Empty", jsonType, ``, http.StatusBadRequest, "empty"},
		{"UnknownField", jsonType, `{"email":"zoe@example.com","password":"zoe-secret","admin":true}`, http.StatusBadRequest, "unknown field"},
		{"WrongType", jsonType, `{"email":"zoe@example.com","password":123}`, http.StatusBadRequest, "strings"},
		{"Array", jsonType, `[]`, http.StatusBadRequest, "JSON object"},
		{"TrailingData", jsonType, `{"email":"zoe@example.com","password":"zoe-secret"} {}`, http.StatusBadRequest, "exactly one"},
		{"MissingPassword", jsonType, `{"email":"zoe@example.com"}`, http.StatusBadRequest, "required"},
		{"Null", jsonType, `null`, http.StatusBadRequest, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			h := map[string]string{"Content-Type": tc.contentType}
			rec := env.do(t, request{method: http.MethodPost, path: "/api/login", body: tc.body, header: h})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if c := cookie(rec, cookieName); c != nil {
				t.Errorf("API login set the session cookie %v", c)
			}
			if tc.wantStatus != http.StatusOK {
				if got := errorBody(t, rec); !strings.Contains(got, tc.wantError) {
					t.Errorf("error = %q, want it to contain %q", got, tc.wantError)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if got["token"] != "token-sess-new-1" {
				t.Errorf("token = %q, want %q", got["token"], "token-sess-new-1")
			}
			exp, err := time.Parse(time.RFC3339, got["expires_at"])
			if err != nil || !exp.Equal(day.Add(12*time.Hour)) {
				t.Errorf("expires_at = %q (%v), want %s", got["expires_at"], err, day.Add(12*time.Hour).Format(time.RFC3339))
			}
			if len(got) != 2 {
				t.Errorf("body has fields %v, want token and expires_at", got)
			}
		})
	}
}

// TestLogout: POST /logout always clears the cookie and goes to /login,
// also without a valid session.
func TestLogout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
		wantLeft   []string // Zoë's sessions afterwards
	}{
		{
			name:       "SignedIn",
			req:        request{method: http.MethodPost, path: "/logout", user: zoeID, csrf: true, form: url.Values{}},
			wantStatus: http.StatusSeeOther,
			wantLeft:   []string{otherSession},
		},
		{
			name:       "Anonymous",
			req:        request{method: http.MethodPost, path: "/logout", csrf: true, form: url.Values{}},
			wantStatus: http.StatusSeeOther,
			wantLeft:   []string{currentSession, otherSession},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, tc.req)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if got, want := rec.Header().Get("Location"), "/login"; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			if c := cookie(rec, cookieName); c == nil || c.MaxAge >= 0 {
				t.Errorf("session cookie = %v, want it cleared", c)
			}
			if got, want := strings.Join(env.sessions.ids(zoeID), ","), strings.Join(tc.wantLeft, ","); got != want {
				t.Errorf("sessions left = %s, want %s", got, want)
			}
		})
	}

	t.Run("StoreDown", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodPost, path: "/logout", csrf: true, form: url.Values{},
			header: map[string]string{hdrAuthError: "unavailable"}})
		if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
		if c := cookie(rec, cookieName); c != nil {
			t.Errorf("session cookie = %v, want it kept: the logout was not confirmed", c)
		}
	})

	// Revocation wins: a revocation the store could not confirm is a 503
	// that keeps the cookie, so that the user can try again.
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/logout"},
		{http.MethodPost, "/api/logout"},
		{http.MethodPost, "/logout-all"},
		{http.MethodPost, "/api/logout-all"},
	} {
		t.Run("RevokeFails"+tc.path, func(t *testing.T) {
			env := newTestEnv(t)
			env.sessions.err = fmt.Errorf("redis: %w", profile.ErrUnavailable)
			rec := env.do(t, request{method: tc.method, path: tc.path, user: zoeID, csrf: true, form: url.Values{}})
			if got, want := rec.Code, http.StatusServiceUnavailable; got != want {
				t.Errorf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if c := cookie(rec, cookieName); c != nil {
				t.Errorf("session cookie = %v, want it kept", c)
			}
		})
	}

	t.Run("API", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodPost, path: "/api/logout", user: zoeID, header: map[string]string{"Authorization": "Bearer t"}})
		if got, want := rec.Code, http.StatusNoContent; got != want {
			t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
		}
		if got, want := strings.Join(env.sessions.ids(zoeID), ","), otherSession; got != want {
			t.Errorf("sessions left = %s, want %s", got, want)
		}
	})
}
