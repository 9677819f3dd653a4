package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/web"
)

// Hostile input through the whole handler chain (fakes behind it): every
// answer is a deliberate status with a JSON error on /api/*, never a 500
// and never a panic. Fuzz targets' seed corpora run in every `go test`.

// fastLogin lifts the login rate limit so that fuzzing reaches the handler
// (newTestEnv's limiters are generous already; this says so where it matters).
func fastLogin(c *web.Config) {
	c.LoginByAddress, c.LoginByAccount = newFakeLimiter(1<<30), newFakeLimiter(1<<30)
}

// wantDeliberate fails t on a 5xx or, on /api/*, on an error without a
// JSON error body.
func wantDeliberate(t *testing.T, what string, code int, body string, ok ...int) {
	t.Helper()
	for _, c := range ok {
		if code == c {
			if code >= 400 && !isJSONError(body) {
				t.Fatalf("%s: %d without a JSON error: %.300q", what, code, body)
			}
			return
		}
	}
	t.Fatalf("%s: status %d (%.300q), want one of %v", what, code, body, ok)
}

func isJSONError(body string) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

// FuzzAPIPaging sends arbitrary raw query strings to every paged endpoint.
func FuzzAPIPaging(f *testing.F) {
	for _, q := range []string{
		"", "offset=0&limit=20", "offset=-1", "limit=0", "limit=101", "offset=99999999999999999999", "offset=2147483648",
		"offset=1e9", "limit=%2B5", "offset=%00", "offset=%FF%FE", "offset=1&offset=2", "limit=1;limit=2", "%zz",
		"offset=" + strings.Repeat("9", 5000), "offset=0&limit=100&extra=" + strings.Repeat("x", 1000),
	} {
		f.Add(q)
	}
	env := newTestEnv(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		// Only what can stand in a request line: visible ASCII, no fragment.
		for i := 0; i < len(rawQuery); i++ {
			if c := rawQuery[i]; c <= ' ' || c >= 0x7f || c == '#' {
				return
			}
		}
		for _, path := range []string{"/api/me/orders", "/api/me/invoices", "/api/me/inquiries"} {
			req := request{path: path + "?" + rawQuery, user: zoeID}
			rec := env.do(t, req)
			wantDeliberate(t, req.path, rec.Code, rec.Body.String(), http.StatusOK, http.StatusBadRequest)
		}
	})
}

// FuzzAPILogin sends arbitrary bodies to POST /api/login.
func FuzzAPILogin(f *testing.F) {
	for _, b := range []string{
		`{"email":"zoe@example.com","password":"zoe-secret"}`,
		`{"email":"zoe@example.com","password":"nope"}`,
		`{"email":"\xff\xfe@example.com","password":"x"}`,
		`{"email":"zoe@example.com","password":"zoe-secret","email":"other@example.com"}`,
		`{"email":"a","password":"b","admin":true}`,
		`{"email":["a"],"password":{"b":1}}`,
		`{"email":"a","password":"b","n":1e999}`,
		`{"email":"\u0000","password":"\ud800"}`,
		strings.Repeat("[", 10000),
		`{"email":"` + strings.Repeat("a", 300) + `@example.com","password":"x"}`,
		``, `null`, `"x"`, `{}`, `{"email":"a","password":"b"} trailing`,
	} {
		f.Add(b)
	}
	env := newTestEnv(f, fastLogin)
	f.Fuzz(func(t *testing.T, body string) {
		rec := env.do(t, request{method: http.MethodPost, path: "/api/login", body: body,
			header: map[string]string{"Content-Type": "application/json"}})
		wantDeliberate(t, "login", rec.Code, rec.Body.String(),
			http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge)
	})
}

// FuzzSessionDataKey sends arbitrary keys (path segments) and values.
func FuzzSessionDataKey(f *testing.F) {
	for _, k := range []string{"cart", "", "a/b", "..", "%2F", "\xff", "k\x00", strings.Repeat("k", 129), "ü", "%"} {
		f.Add(k, "v")
	}
	env := newTestEnv(f)
	bearer := map[string]string{"Authorization": "Bearer t"}
	f.Fuzz(func(t *testing.T, key, value string) {
		path := "/api/session/data/" + url.PathEscape(key)
		for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
			rec := env.do(t, request{method: method, path: path, user: zoeID, header: bearer, body: value})
			wantDeliberate(t, method+" "+path, rec.Code, rec.Body.String(), http.StatusOK, http.StatusNoContent,
				http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
				http.StatusMethodNotAllowed)
		}
	})
}

// TestHostileLoginInput: invalid UTF-8, control characters, huge numbers
// and unknown fields in logins are refused or fail like wrong credentials.
func TestHostileLoginInput(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"InvalidUTF8Email", "{\"email\":\"zo\xffe@example.com\",\"password\":\"zoe-secret\"}", http.StatusUnauthorized},
		{"InvalidUTF8Password", "{\"email\":\"zoe@example.com\",\"password\":\"zoe-\xc3\x28\"}", http.StatusUnauthorized},
		{"EscapedNULEmail", `{"email":"zoe@example.com\u0000","password":"zoe-secret"}`, http.StatusUnauthorized},
		{"LoneSurrogate", `{"email":"\ud800@example.com","password":"zoe-secret"}`, http.StatusUnauthorized},
		{"HugeNumberField", `{"email":"zoe@example.com","password":"zoe-secret","tries":1e999999}`, http.StatusBadRequest},
		{"NegativeNumberAsPassword", `{"email":"zoe@example.com","password":-1}`, http.StatusBadRequest},
		{"NestedUnknownField", `{"email":"zoe@example.com","password":"zoe-secret","x":{"y":[1,2,{"z":null}]}}`, http.StatusBadRequest},
		{"CaseVariantField", `{"EMAIL":"zoe@example.com","Password":"zoe-secret"}`, http.StatusOK}, // encoding/json matches keys case-insensitively
		{"DeepNesting", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, fastLogin)
			// Some of these bodies are outside the document on purpose.
			env.holdTo(openapitest.Options{Lenient: true})
			rec := env.do(t, request{method: http.MethodPost, path: "/api/login", body: tc.body,
				header: map[string]string{"Content-Type": "application/json"}})
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want != http.StatusOK && !isJSONError(rec.Body.String()) {
				t.Errorf("body %s, want a JSON error", rec.Body)
			}
		})
	}

	// The form login echoes the email back into the page: invalid UTF-8 and
	// markup come back escaped, not as a broken page.
	env := newTestEnv(t, fastLogin)
	rec := env.do(t, request{method: http.MethodPost, path: "/login", csrf: true,
		form: url.Values{"email": {"<b>\xff</b>@example.com"}, "password": {"x"}}})
	if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "<b>") {
		t.Errorf("form login with a hostile email: %d, page has raw markup: %v", rec.Code, strings.Contains(rec.Body.String(), "<b>"))
	}
}

// TestHostileDataKeys adds what TestSessionData does not cover.
func TestHostileDataKeys(t *testing.T) {
	bearer := map[string]string{"Authorization": "Bearer t"}
	for _, tc := range []struct {
		name, rawPath string
		want          int
	}{
		{"InvalidUTF8", "/api/session/data/%FF%FE", http.StatusBadRequest},
		{"MultiByteOverLimit", "/api/session/data/" + url.PathEscape(strings.Repeat("ü", 65)), http.StatusBadRequest}, // 130 bytes
		{"MultiByteAtLimit", "/api/session/data/" + url.PathEscape(strings.Repeat("ü", 64)), http.StatusNoContent},    // 128 bytes
		{"EncodedSlash", "/api/session/data/a%2Fb", http.StatusNoContent},
		{"Empty", "/api/session/data/", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, request{method: http.MethodPut, path: tc.rawPath, user: zoeID, header: bearer, body: "v"})
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want >= 400 && !isJSONError(rec.Body.String()) {
				t.Errorf("body %s, want a JSON error", rec.Body)
			}
		})
	}
}
