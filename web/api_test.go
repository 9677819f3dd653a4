package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/profile"
)

type pageBody struct {
	Items  []map[string]any `json:"items"`
	Offset int              `json:"offset"`
	Limit  int              `json:"limit"`
	Total  int              `json:"total"`
}

func TestAPIPaging(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		wantStatus int
		wantOffset int
		wantLimit  int
		wantItems  int
		wantTotal  int
		wantFirst  string // number of the first item
	}{
		{name: "Defaults", path: "/api/me/orders", wantStatus: 200, wantLimit: 20, wantItems: 20, wantTotal: 25, wantFirst: "ORD-0001"},
		{name: "SecondPage", path: "/api/me/orders?offset=20", wantStatus: 200, wantOffset: 20, wantLimit: 20, wantItems: 5, wantTotal: 25, wantFirst: "ORD-0021"},
		{name: "Window", path: "/api/me/orders?offset=3&limit=2", wantStatus: 200, wantOffset: 3, wantLimit: 2, wantItems: 2, wantTotal: 25, wantFirst: "ORD-0004"},
		{name: "LimitOne", path: "/api/me/orders?limit=1", wantStatus: 200, wantLimit: 1, wantItems: 1, wantTotal: 25, wantFirst: "ORD-0001"},
		{name: "LimitMax", path: "/api/me/orders?limit=100", wantStatus: 200, wantLimit: 100, wantItems: 25, wantTotal: 25, wantFirst: "ORD-0001"},
		{name: "EmptyParamsAreDefaults", path: "/api/me/orders?offset=&limit=", wantStatus: 200, wantLimit: 20, wantItems: 20, wantTotal: 25, wantFirst: "ORD-0001"},
		{name: "PastTheEnd", path: "/api/me/orders?offset=25", wantStatus: 200, wantOffset: 25, wantLimit: 20, wantTotal: 25},
		{name: "FarPastTheEnd", path: "/api/me/orders?offset=1000000000", wantStatus: 200, wantOffset: 1000000000, wantLimit: 20, wantTotal: 25},
		{name: "Invoices", path: "/api/me/invoices?limit=4", wantStatus: 200, wantLimit: 4, wantItems: 4, wantTotal: 6, wantFirst: "INV-0001"},
		{name: "Inquiries", path: "/api/me/inquiries?offset=2", wantStatus: 200, wantOffset: 2, wantLimit: 20, wantItems: 1, wantTotal: 3},
		{name: "OffsetNegative", path: "/api/me/orders?offset=-1", wantStatus: 400},
		{name: "LimitZero", path: "/api/me/orders?limit=0", wantStatus: 400},
		{name: "LimitOverMax", path: "/api/me/orders?limit=101", wantStatus: 400},
		{name: "LimitNotANumber", path: "/api/me/orders?limit=abc", wantStatus: 400},
		{name: "OffsetNotANumber", path: "/api/me/orders?offset=abc", wantStatus: 400},
		{name: "OffsetExponent", path: "/api/me/orders?offset=1e9", wantStatus: 400},
		{name: "OffsetFraction", path: "/api/me/orders?offset=1.5", wantStatus: 400},
		{name: "OffsetPlusSign", path: "/api/me/orders?offset=%2B5", wantStatus: 400},
		{name: "OffsetSpace", path: "/api/me/orders?offset=%205", wantStatus: 400},
		{name: "OffsetHuge", path: "/api/me/orders?offset=99999999999999999999", wantStatus: 400},
		{name: "OffsetOverInt32", path: "/api/me/orders?offset=2147483648", wantStatus: 400},
		{name: "OffsetInt32", path: "/api/me/orders?offset=2147483647", wantStatus: 200, wantOffset: 2147483647, wantLimit: 20, wantTotal: 25},
		{name: "LimitHuge", path: "/api/me/orders?limit=99999999999999999999", wantStatus: 400},
		{name: "LimitNegative", path: "/api/me/invoices?limit=-5", wantStatus: 400},
		{name: "InquiriesBadOffset", path: "/api/me/inquiries?offset=x", wantStatus: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, request{path: tc.path, user: zoeID})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if tc.wantStatus != http.StatusOK {
				msg := errorBody(t, rec)
				if !strings.Contains(msg, "offset") && !strings.Contains(msg, "limit") {
					t.Errorf("error = %q, want it to name the bad parameter", msg)
				}
				if n := len(env.profiles.lastQueries()); n != 0 {
					t.Errorf("a bad page still read the profile %d times", n)
				}
				return
			}
			var got pageBody
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if got.Items == nil {
				t.Errorf("items is null, want an array: %s", rec.Body)
			}
			if got.Offset != tc.wantOffset || got.Limit != tc.wantLimit || len(got.Items) != tc.wantItems || got.Total != tc.wantTotal {
				t.Errorf("offset, limit, items, total = %d, %d, %d, %d; want %d, %d, %d, %d",
					got.Offset, got.Limit, len(got.Items), got.Total, tc.wantOffset, tc.wantLimit, tc.wantItems, tc.wantTotal)
			}
			if tc.wantFirst != "" && len(got.Items) > 0 && got.Items[0]["number"] != tc.wantFirst {
				t.Errorf("first item number = %v, want %s", got.Items[0]["number"], tc.wantFirst)
			}
		})
	}
}

func TestAPIItemShapes(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string // the first item, exactly
	}{
		{
			"/api/me/orders?limit=1",
			`{"id":"o1","number":"ORD-0001","date":"2026-01-02T10:30:00Z","status":"delivered","total":"149.90","currency":"EUR","item_count":3,"shipping_city":"Berlin"}`,
		},
		{
			"/api/me/invoices?limit=1",
			`{"id":"i1","number":"INV-0001","date":"2026-01-02T10:30:00Z","amount":"50.05","currency":"EUR","paid":true}`,
		},
		{
			"/api/me/inquiries?limit=1",
			`{"id":"q1","closed":true,"description":"Wo bleibt meine Bestellung?","submitted":"2026-01-02T10:30:00Z","submitter_email":"zoe@example.com","submitter_name":"Zoë Ångström"}`,
		},
	} {
		t.Run(tc.path, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, request{path: tc.path, user: zoeID})
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			var got struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Items) != 1 {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if got, want := string(got.Items[0]), tc.want; got != want {
				t.Errorf("item =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestAPISessions(t *testing.T) {
	bearer := map[string]string{"Authorization": "Bearer t"}

	t.Run("List", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{path: "/api/sessions", user: zoeID})
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
		}
		var got []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d sessions, want 2: %s", len(got), rec.Body)
		}
		if got[0]["id"] != currentSession || got[0]["current"] != true || got[1]["current"] != false {
			t.Errorf("sessions = %v, want %s marked current", got, currentSession)
		}
		for _, f := range []string{"id", "created", "last_seen", "user_agent", "current"} {
			if _, ok := got[0][f]; !ok {
				t.Errorf("session has no %q field: %v", f, got[0])
			}
		}
		if got, want := got[0]["last_seen"], "2026-01-02T11:30:00Z"; got != want {
			t.Errorf("last_seen = %v, want %s", got, want)
		}
	})

	t.Run("ListEmptyIsArray", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{path: "/api/sessions", user: bobID})
		if got, want := strings.TrimSpace(rec.Body.String()), "[]"; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
	})

	for _, tc := range []struct {
		name       string
		id         string
		wantStatus int
		wantLeft   string
		wantClear  bool
	}{
		{"RevokeOther", otherSession, http.StatusNoContent, currentSession, false},
		{"RevokeCurrent", currentSession, http.StatusNoContent, otherSession, true},
		{"Unknown", "sess-nope", http.StatusNotFound, currentSession + "," + otherSession, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, request{method: http.MethodDelete, path: "/api/sessions/" + tc.id, user: zoeID, header: bearer})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if tc.wantStatus == http.StatusNotFound {
				errorBody(t, rec)
			}
			if got := strings.Join(env.sessions.ids(zoeID), ","); got != tc.wantLeft {
				t.Errorf("sessions left = %s, want %s", got, tc.wantLeft)
			}
			if got := cookie(rec, cookieName) != nil; got != tc.wantClear {
				t.Errorf("cookie cleared = %v, want %v", got, tc.wantClear)
			}
		})
	}

	t.Run("OtherUsersSessionIsNotFound", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodDelete, path: "/api/sessions/" + otherSession, user: bobID, header: bearer})
		if got, want := rec.Code, http.StatusNotFound; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got := len(env.sessions.ids(zoeID)); got != 2 {
			t.Errorf("Zoë has %d sessions left, want 2", got)
		}
	})

	t.Run("LogoutAll", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodPost, path: "/api/logout-all", user: zoeID, header: bearer})
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
		}
		if got, want := strings.TrimSpace(rec.Body.String()), `{"revoked":2}`; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
		if c := cookie(rec, cookieName); c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie = %v, want it cleared", c)
		}
		if got := len(env.sessions.ids(zoeID)); got != 0 {
			t.Errorf("%d sessions left, want 0", got)
		}
	})
}

func TestSessionsPage(t *testing.T) {
	runServerTests(t, []serverTestCase{
		{
			name:       "List",
			req:        request{path: "/sessions", user: zoeID},
			wantStatus: http.StatusOK,
			wantBody: []string{
				`id="sessions"`, `id="this-device"`, "This device", "Firefox on Linux", "Safari on iPhone",
				`action="/sessions/` + otherSession + `/revoke"`, `action="/logout-all"`,
				"2 Jan 2026, 11:30 UTC", `id="user-name">Zoë Ångström<`,
			},
			wantNotBody: []string{`action="/sessions/` + currentSession + `/revoke"`},
			wantHeader:  map[string]string{"Cache-Control": "no-store"},
		},
		{
			name:       "Empty",
			req:        request{path: "/sessions", user: bobID},
			wantStatus: http.StatusOK,
			wantBody:   []string{`<p id="sessions" class="empty">`},
		},
		{
			name:         "RevokeOther",
			req:          request{method: http.MethodPost, path: "/sessions/" + otherSession + "/revoke", user: zoeID, csrf: true, form: url.Values{}},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/sessions",
		},
		{
			name:         "RevokeUnknownIsANoOp",
			req:          request{method: http.MethodPost, path: "/sessions/nope/revoke", user: zoeID, csrf: true, form: url.Values{}},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/sessions",
		},
		{
			name:         "RevokeCurrentLogsOut",
			req:          request{method: http.MethodPost, path: "/sessions/" + currentSession + "/revoke", user: zoeID, csrf: true, form: url.Values{}},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
		{
			name:         "RevokeAnonymous",
			req:          request{method: http.MethodPost, path: "/sessions/" + otherSession + "/revoke", csrf: true, form: url.Values{}},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
		{
			name:         "LogoutAll",
			req:          request{method: http.MethodPost, path: "/logout-all", user: zoeID, csrf: true, form: url.Values{}},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
		{
			name:       "LogoutAllWithoutCSRF",
			req:        request{method: http.MethodPost, path: "/logout-all", user: zoeID, form: url.Values{}},
			wantStatus: http.StatusForbidden,
		},
	})

	t.Run("RevokeEffect", func(t *testing.T) {
		env := newTestEnv(t)
		env.do(t, request{method: http.MethodPost, path: "/sessions/" + otherSession + "/revoke", user: zoeID, csrf: true, form: url.Values{}})
		if got, want := strings.Join(env.sessions.ids(zoeID), ","), currentSession; got != want {
			t.Errorf("sessions left = %s, want %s", got, want)
		}
		rec := env.do(t, request{method: http.MethodPost, path: "/logout-all", user: zoeID, csrf: true, form: url.Values{}})
		if c := cookie(rec, cookieName); c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie = %v, want it cleared", c)
		}
		if got := len(env.sessions.ids(zoeID)); got != 0 {
			t.Errorf("%d sessions left after logout-all, want 0", got)
		}
	})
}

func TestSessionData(t *testing.T) {
	bearer := map[string]string{"Authorization": "Bearer t"}
	maxValue := bytes.Repeat([]byte{0xff}, profile.MaxDataValueBytes)
	for _, tc := range []struct {
		name       string
		key        string
		value      []byte
		wantStatus int
	}{
		{"Small", "cart", []byte(`{"items":[1,2]}`), http.StatusNoContent},
		{"Empty", "step", nil, http.StatusNoContent},
		{"Binary", "bin", []byte{0, 1, 2, 0xff, '\n'}, http.StatusNoContent},
		{"ExactlyMaxValue", "big", maxValue, http.StatusNoContent},
		{"ValueTooLarge", "big", append(maxValue, 0), http.StatusRequestEntityTooLarge},
		{"KeyExactlyMax", strings.Repeat("k", profile.MaxDataKeyBytes), []byte("v"), http.StatusNoContent},
		{"KeyTooLong", strings.Repeat("k", profile.MaxDataKeyBytes+1), []byte("v"), http.StatusBadRequest},
		{"KeyUnicode", "warenkorb-ü", []byte("v"), http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			path := "/api/session/data/" + url.PathEscape(tc.key)
			rec := env.do(t, request{method: http.MethodPut, path: path, user: zoeID, header: bearer, body: string(tc.value)})
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Fatalf("PUT status = %d, want %d; body %.200s", got, want, rec.Body)
			}
			if tc.wantStatus != http.StatusNoContent {
				errorBody(t, rec)
				return
			}
			rec = env.do(t, request{path: path, user: zoeID, header: bearer})
			if rec.Code != http.StatusOK {
				t.Fatalf("GET status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/octet-stream"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if !bytes.Equal(rec.Body.Bytes(), tc.value) {
				t.Errorf("GET returned %d bytes, want the %d that were PUT", rec.Body.Len(), len(tc.value))
			}
			rec = env.do(t, request{method: http.MethodDelete, path: path, user: zoeID, header: bearer})
			if got, want := rec.Code, http.StatusNoContent; got != want {
				t.Fatalf("DELETE status = %d, want %d", got, want)
			}
			rec = env.do(t, request{path: path, user: zoeID, header: bearer})
			if got, want := rec.Code, http.StatusNotFound; got != want {
				t.Fatalf("GET after DELETE status = %d, want %d", got, want)
			}
			errorBody(t, rec)
		})
	}

	t.Run("PerSession", func(t *testing.T) {
		env := newTestEnv(t)
		env.do(t, request{method: http.MethodPut, path: "/api/session/data/cart", user: zoeID, header: bearer, body: "mine"})
		other := map[string]string{"Authorization": "Bearer t", hdrSession: otherSession}
		rec := env.do(t, request{path: "/api/session/data/cart", user: zoeID, header: other})
		if got, want := rec.Code, http.StatusNotFound; got != want {
			t.Errorf("another session sees the value: status = %d, want %d", got, want)
		}
	})

	t.Run("EmptyKey", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodPut, path: "/api/session/data/", user: zoeID, header: bearer, body: "v"})
		if got, want := rec.Code, http.StatusBadRequest; got != want {
			t.Errorf("status = %d, want %d; body %s", got, want, rec.Body)
		}
	})

	t.Run("DeleteMissingIs204", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodDelete, path: "/api/session/data/nope", user: zoeID, header: bearer})
		if got, want := rec.Code, http.StatusNoContent; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})

	t.Run("Full", func(t *testing.T) {
		env := newTestEnv(t)
		for i := range profile.MaxDataKeys {
			rec := env.do(t, request{method: http.MethodPut, path: fmt.Sprintf("/api/session/data/k%d", i), user: zoeID, header: bearer, body: "v"})
			if rec.Code != http.StatusNoContent {
				t.Fatalf("PUT %d: status = %d", i, rec.Code)
			}
		}
		rec := env.do(t, request{method: http.MethodPut, path: "/api/session/data/one-more", user: zoeID, header: bearer, body: "v"})
		if got, want := rec.Code, http.StatusConflict; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		errorBody(t, rec)
	})

	t.Run("CookieAuthNeedsCSRF", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(t, request{method: http.MethodPut, path: "/api/session/data/cart", user: zoeID, body: "v"})
		if got, want := rec.Code, http.StatusForbidden; got != want {
			t.Errorf("without token: status = %d, want %d", got, want)
		}
		rec = env.do(t, request{method: http.MethodPut, path: "/api/session/data/cart", user: zoeID, body: "v", csrf: true,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
		if got, want := rec.Code, http.StatusNoContent; got != want {
			t.Fatalf("with header token: status = %d, want %d; body %s", got, want, rec.Body)
		}
		v, _ := env.data.GetData(t.Context(), zoeID, currentSession, "cart")
		if got, want := string(v), "v"; got != want {
			t.Errorf("stored %q, want %q (the CSRF check must not eat the body)", got, want)
		}
	})
}
