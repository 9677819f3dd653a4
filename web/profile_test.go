package web_test

import (
	"net/http"
	"testing"
)

func TestProfilePage(t *testing.T) {
	runServerTests(t, []serverTestCase{
		{
			name:       "FirstPage",
			req:        request{path: "/profile", user: zoeID},
			wantStatus: http.StatusOK,
			wantBody: []string{
				`id="user-name">Zoë Ångström<`, `id="orders"`, `id="orders-next" class="button secondary" rel="next" href="/profile?page=2"`,
				"Page 1 of 2", `id="interests"`, "<li>küche</li>", `id="invoices"`, `id="inquiries"`,
				`id="logout"`, `action="/logout"`, `id="sessions-link" href="/sessions"`,
				"ORD-0001", "ORD-0020", "149.90 EUR", "2 Jan 2026", "Großbeerenstraße 1", "10963 Berlin",
				"INV-0006", "50.05 EUR", "Wo bleibt meine Bestellung?",
			},
			wantNotBody: []string{`id="orders-prev"`, "ORD-0021"},
			wantHeader: map[string]string{
				"Cache-Control":           "no-store",
				"Content-Type":            "text/html; charset=UTF-8",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "same-origin",
				"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
			},
		},
		{
			name:        "SecondPage",
			req:         request{path: "/profile?page=2", user: zoeID},
			wantStatus:  http.StatusOK,
			wantBody:    []string{`id="orders-prev" class="button secondary" rel="prev" href="/profile?page=1"`, "Page 2 of 2", "ORD-0021", "ORD-0025"},
			wantNotBody: []string{`id="orders-next"`, "ORD-0020"},
		},
		{
			name:        "PastTheLastPage",
			req:         request{path: "/profile?page=9", user: zoeID},
			wantStatus:  http.StatusOK,
			wantBody:    []string{"No orders on this page.", `id="orders-prev" class="button secondary" rel="prev" href="/profile?page=2"`, "Page 9 of 2"},
			wantNotBody: []string{`id="orders-next"`},
		},
		{
			name:        "PageZero",
			req:         request{path: "/profile?page=0", user: zoeID},
			wantStatus:  http.StatusBadRequest,
			wantBody:    []string{"Error 400", "Page must be a whole number", `href="/"`},
			wantNotBody: []string{`{"error"`},
		},
		{
			name:       "PageNegative",
			req:        request{path: "/profile?page=-1", user: zoeID},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "PageNotANumber",
			req:        request{path: "/profile?page=abc", user: zoeID},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"Page must be a whole number"},
		},
		{
			name:       "PageHuge",
			req:        request{path: "/profile?page=99999999999999999999", user: zoeID},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "PageTooFar",
			req:        request{path: "/profile?page=107374184", user: zoeID},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "EmptyProfile",
			req:        request{path: "/profile", user: bobID},
			wantStatus: http.StatusOK,
			wantBody: []string{
				`id="user-name">Bob<`, `<p id="orders" class="empty">No orders yet.</p>`, `<p id="interests" class="empty">`,
				`<p id="invoices" class="empty">`, `<p id="inquiries" class="empty">`, "Page 1 of 1",
			},
			wantNotBody: []string{`id="orders-next"`, `id="orders-prev"`},
		},
		{
			name:         "Anonymous",
			req:          request{path: "/profile?page=2"},
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/login",
		},
	})
}
