package web_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

// TestTemplates parses every page and executes it with its zero-value page
// struct: a template that refers to a missing field fails here, not in
// front of a user.
func TestTemplates(t *testing.T) {
	env := newTestEnv(t)
	pages, err := web.ExecuteZeroPages(env.server)
	if err != nil {
		t.Fatal(err)
	}
	for name, html := range pages {
		for _, want := range []string{"<!doctype html>", `<html lang="en">`, `<meta name="viewport"`, `<link rel="stylesheet" href="/static/style.css?v=`, "</html>"} {
			if !strings.Contains(html, want) {
				t.Errorf("page %s does not contain %q", name, want)
			}
		}
		if strings.Contains(html, `id="logout"`) {
			t.Errorf("page %s shows the account menu without a user", name)
		}
	}
}

// TestHTMLInjection: user-controlled text comes out escaped everywhere.
func TestHTMLInjection(t *testing.T) {
	const (
		em     = "<em>x</em>"
		script = "<script>alert(1)</script>"
	)
	evil := func(env *testEnv) {
		p := env.profiles.profiles[zoeID]
		p.Basic.FirstName = em
		p.Basic.LastName = script
		p.Basic.City = `"><img src=x onerror=alert(1)>`
		p.Interests = []string{script}
		p.Orders[0].Number = em
		p.Orders[0].Status = `" onmouseover="alert(1)`
		p.Inquiries[0].Description = script
		env.sessions.sessions[zoeID][1].UserAgent = script
		env.sessions.sessions[zoeID][1].ID = `x"/><script>`
	}
	for _, r := range []request{
		{path: "/profile", user: zoeID},
		{path: "/sessions", user: zoeID},
		{method: http.MethodPost, path: "/login", csrf: true, form: url.Values{"email": {`"><script>alert(1)</script>`}, "password": {"x"}}},
	} {
		t.Run(r.path, func(t *testing.T) {
			env := newTestEnv(t)
			evil(env)
			rec := env.do(t, r)
			body := rec.Body.String()
			for _, raw := range []string{em, script, "<img", `" onmouseover`, `x"/>`} {
				if strings.Contains(body, raw) {
					t.Errorf("body contains unescaped %q", raw)
				}
			}
			if r.path == "/profile" && !strings.Contains(body, "&lt;em&gt;x&lt;/em&gt;") {
				t.Errorf("escaped name missing from the page")
			}
		})
	}
}

// TestUnicode: non-ASCII text round-trips unchanged through HTML and JSON.
func TestUnicode(t *testing.T) {
	env := newTestEnv(t)
	page := env.do(t, request{path: "/profile", user: zoeID}).Body.String()
	for _, s := range []string{zoeName, "Großbeerenstraße", "küche"} {
		if !strings.Contains(page, s) {
			t.Errorf("page does not contain %q unchanged", s)
		}
	}

	rec := env.do(t, request{path: "/api/me", user: zoeID})
	if !strings.Contains(rec.Body.String(), `"first_name":"Zoë","last_name":"Ångström"`) {
		t.Errorf("JSON does not contain the name as UTF-8: %s", rec.Body)
	}
	var got struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got, want := got.FirstName+" "+got.LastName, zoeName; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		in   profile.Money
		want string
	}{
		{0, "0.00"},
		{5, "0.05"},
		{99, "0.99"},
		{100, "1.00"},
		{14990, "149.90"},
		{123456789, "1234567.89"},
		{-5, "-0.05"},
		{-14990, "-149.90"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	} {
		if got := web.FormatAmount(tc.in); got != tc.want {
			t.Errorf("FormatAmount(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := web.FormatMoney(14990, "EUR"), "149.90 EUR"; got != want {
		t.Errorf("FormatMoney = %q, want %q", got, want)
	}
}

func TestFormatDate(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 23, 59, 0, 0, time.UTC), "2 Jan 2026"},
		{time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), "31 Dec 2025"},
		{time.Time{}, "—"},
	} {
		if got := web.FormatDate(tc.in); got != tc.want {
			t.Errorf("FormatDate(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDescribeDevice(t *testing.T) {
	for _, tc := range []struct {
		ua   string
		want string
	}{
		{"", "Unknown device"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36", "Chrome on Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36", "Chrome on Android"},
		{"curl/8.5.0", "curl"},
		{"Go-http-client/1.1", "Go program"},
		{"SomeBot", "SomeBot"},
		{strings.Repeat("ä", 50), strings.Repeat("ä", 40) + "…"},
	} {
		if got := web.DescribeDevice(tc.ua); got != tc.want {
			t.Errorf("DescribeDevice(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}
