package auth

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// SetCookie sends t as the session cookie. It is a browser-session cookie
// (no Expires): the server decides when the session ends, and closing the
// browser ends it on the client too.
func (m *Manager) SetCookie(c echo.Context, t Issued) {
	m.writeCookie(c, &http.Cookie{Value: t.Token})
}

// ClearCookie tells the browser to drop the session cookie.
func (m *Manager) ClearCookie(c echo.Context) {
	m.writeCookie(c, &http.Cookie{MaxAge: -1, Expires: time.Unix(1, 0)})
}

// writeCookie adds the attributes every session cookie shares (scs's
// defaults) and the headers that keep shared caches from storing it. A
// Secure cookie gets the __Host- name (CookieNameFor), which also needs
// Path=/ and no Domain.
func (m *Manager) writeCookie(c echo.Context, ck *http.Cookie) {
	ck.Secure = m.cookieSecure(c.Request())
	ck.Name = m.cookieName
	if ck.Secure {
		ck.Name = m.secureName
	}
	ck.Path = "/"
	ck.HttpOnly = true
	ck.SameSite = http.SameSiteLaxMode
	h := c.Response().Header()
	addHeaderValue(h, "Vary", "Cookie")
	addHeaderValue(h, "Cache-Control", `no-cache="Set-Cookie"`)
	// The last word wins: the middleware may already have cleared a bad
	// cookie before a handler (logout, login) writes its own.
	dropSetCookie(h, ck.Name)
	c.SetCookie(ck)
}

// dropSetCookie removes any Set-Cookie for name already in h.
func dropSetCookie(h http.Header, name string) {
	vs := h.Values("Set-Cookie")
	if len(vs) == 0 {
		return
	}
	kept := make([]string, 0, len(vs))
	for _, v := range vs {
		if !strings.HasPrefix(v, name+"=") {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// addHeaderValue adds v to h[key] unless a comma-separated entry of it
// already says so, so that the middleware and SetCookie do not repeat it.
func addHeaderValue(h http.Header, key, v string) {
	for _, line := range h.Values(key) {
		for part := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(part), v) {
				return
			}
		}
	}
	h.Add(key, v)
}
