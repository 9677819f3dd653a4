package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
)

// CSRF defence, in three layers (docs/limits.md "CSRF and cookies"):
//
//  1. Every unsafe request (not GET, HEAD or OPTIONS) passes
//     net/http.CrossOriginProtection: a browser's Sec-Fetch-Site must say
//     same-origin (or none: typed in the address bar), and without it the
//     Origin, when sent, must name this host. A cross-site or same-site
//     (sibling subdomain) form or fetch is refused whatever token it has.
//  2. Cookie-authenticated unsafe requests also carry a token bound to the
//     session: HMAC-SHA256 over the session id with a key derived from
//     SESSION_SECRET. Another session's token, or anything planted in a
//     cookie, is worthless, and the server keeps no token state.
//  3. The anonymous login form carries a signed double-submit token: a
//     random nonce in a cookie (__Host- when Secure) and the HMAC of that
//     nonce in the form. A pair that did not come from this server does not
//     match.
//
// Not checked: Bearer-authenticated calls (a browser adds no Authorization
// header cross-site without a CORS preflight, which this service does not
// answer), the JSON login (a cross-site form cannot send JSON, and there is
// no session to ride on yet) and the CRM's webhook (a server-to-server call
// with its own secret).

// Where a client puts the token (CONTRACT.md).
const (
	csrfHeader    = echo.HeaderXCSRFToken
	csrfFormField = "_csrf"
)

// csrfCookieName is the login form's nonce cookie on plain HTTP; a Secure
// one is auth.SecureCookiePrefix + csrfCookieName.
const csrfCookieName = "pc_csrf"

// Token purposes, mixed into the MAC: a session id and a nonce have the same
// shape, and a token for one must never pass as the other.
const (
	purposeSession = "profilecache/csrf session"
	purposeLogin   = "profilecache/csrf login"
)

const (
	csrfNonceBytes = 16
	// MinCSRFKeyLen is the shortest accepted CSRF key.
	MinCSRFKeyLen = 32
)

// csrfTokenLen is the length of every token: base64url of a SHA-256 MAC.
var csrfTokenLen = base64.RawURLEncoding.EncodedLen(sha256.Size)

// Errors of the CSRF checks; errorStatus maps both to 403.
var (
	errCrossOrigin = errors.New("cross-origin request refused")
	errCSRFToken   = errors.New("missing or invalid CSRF token")
)

// csrfGuard holds the keys and the cross-origin checker. Safe for
// concurrent use.
type csrfGuard struct {
	keys         [][]byte // keys[0] signs; all verify
	crossOrigin  *http.CrossOriginProtection
	secureCookie bool
	secureReq    func(*http.Request) bool
}

func newCSRFGuard(cfg Config) (*csrfGuard, error) {
	key := cfg.CSRFKey
	if key == nil {
		// Tokens then die with the process and are not valid on other
		// instances; cmd always passes a key derived from SESSION_SECRET.
		key = make([]byte, MinCSRFKeyLen)
		_, _ = rand.Read(key) // never fails (crypto/rand docs)
	}
	g := &csrfGuard{
		crossOrigin:  http.NewCrossOriginProtection(),
		secureCookie: cfg.CSRFCookieSecure,
		secureReq:    cfg.SecureRequest,
	}
	for i, k := range append([][]byte{key}, cfg.CSRFPreviousKeys...) {
		if len(k) < MinCSRFKeyLen {
			return nil, fmt.Errorf("web: config: CSRF key %d has %d bytes, want at least %d", i, len(k), MinCSRFKeyLen)
		}
		g.keys = append(g.keys, append([]byte(nil), k...))
	}
	return g, nil
}

// mac is HMAC-SHA256(key, purpose || 0 || value).
func mac(key []byte, purpose, value string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return h.Sum(nil)
}

// token is the current token for value.
func (g *csrfGuard) token(purpose, value string) string {
	return base64.RawURLEncoding.EncodeToString(mac(g.keys[0], purpose, value))
}

// valid reports whether tok is value's token under any key, comparing in
// constant time.
func (g *csrfGuard) valid(purpose, value, tok string) bool {
	if value == "" || len(tok) != csrfTokenLen {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return false
	}
	ok := false
	for _, k := range g.keys {
		ok = hmac.Equal(got, mac(k, purpose, value)) || ok // every key, so no early exit
	}
	return ok
}

// secure reports whether cookies for r are Secure: configured, or the
// request came over HTTPS through a trusted proxy.
func (g *csrfGuard) secure(r *http.Request) bool {
	return g.secureCookie || (g.secureReq != nil && g.secureReq(r))
}

// cookieName is the nonce cookie's name for r. On HTTPS only the __Host-
// name is read: a plain-named cookie planted by a sibling subdomain or over
// plain HTTP is ignored.
func (g *csrfGuard) cookieName(r *http.Request) string {
	return nonceCookieName(g.secure(r))
}

func nonceCookieName(secure bool) string {
	if secure {
		return auth.SecureCookiePrefix + csrfCookieName
	}
	return csrfCookieName
}

// nonce returns the request's well-formed nonce cookie, or "".
func (g *csrfGuard) nonce(r *http.Request) string {
	ck, err := r.Cookie(g.cookieName(r))
	if err != nil || len(ck.Value) != base64.RawURLEncoding.EncodedLen(csrfNonceBytes) {
		return ""
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(ck.Value); err != nil {
		return ""
	}
	return ck.Value
}

// isSafeMethod: methods that must not change state, and that
// CrossOriginProtection always lets through.
func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// requestToken is the token the client sent: the header, else the form
// field. Only form bodies are read, so a JSON or raw body stays for the
// handler. A form body that cannot be read is the client's problem,
// never a 500: the body limit's 413, 408 for one that came too slowly
// (READ_TIMEOUT), else 400.
func requestToken(c echo.Context) (string, error) {
	req := c.Request()
	if t := req.Header.Get(csrfHeader); t != "" {
		return t, nil
	}
	err := req.ParseForm()
	if err == nil {
		// Multipart too; within the 1 MiB body limit it stays in memory.
		if err = req.ParseMultipartForm(1 << 20); errors.Is(err, http.ErrNotMultipart) {
			err = nil
		}
	}
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) || errors.Is(err, os.ErrDeadlineExceeded) {
			return "", fmt.Errorf("web: read form: %w", err)
		}
		return "", badRequest("malformed form body")
	}
	return req.Form.Get(csrfFormField), nil
}

// crossOriginCheck is the global layer 1: every unsafe request but the
// webhook's and forward auth's goes through CrossOriginProtection. It reads
// no body. Forward auth only says who a request is from; under Envoy it
// sees the upstream's own unsafe requests, which are the upstream's to
// defend.
func (s *Server) crossOriginCheck(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		// By the raw path, so that a disabled webhook (no route) is a plain 404.
		if isSafeMethod(req.Method) || req.URL.Path == routeProfileChanged || isForwardAuth(req.URL.Path) {
			return next(c)
		}
		if err := s.csrf.crossOrigin.Check(req); err != nil {
			return fmt.Errorf("web: %w: %w", errCrossOrigin, err)
		}
		return next(c)
	}
}

// sessionCSRF is layer 2: behind Authenticate, an unsafe cookie-
// authenticated request must carry its session's token. Routes get it
// together with Authenticate (Routes), so no signed-in route can miss it.
func (s *Server) sessionCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if isSafeMethod(req.Method) || hasBearer(req) {
			return next(c)
		}
		tok, err := requestToken(c)
		if err != nil {
			return err
		}
		sid, _ := auth.SessionID(c)
		if !s.csrf.valid(purposeSession, sid, tok) {
			return fmt.Errorf("web: %s %s: %w", req.Method, c.Path(), errCSRFToken)
		}
		return next(c)
	}
}

// loginCSRF is layer 3, for the form login: the nonce cookie and the
// form's token must be a pair this server made.
func (s *Server) loginCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, err := requestToken(c)
		if err != nil {
			return err
		}
		if !s.csrf.valid(purposeLogin, s.csrf.nonce(c.Request()), tok) {
			return fmt.Errorf("web: form login: %w", errCSRFToken)
		}
		return next(c)
	}
}

// sessionToken is the token the pages of a signed-in request carry; "" on
// anonymous requests, whose pages have no form but the login form.
func (s *Server) sessionToken(c echo.Context) string {
	sid, ok := auth.SessionID(c)
	if !ok || sid == "" {
		return ""
	}
	return s.csrf.token(purposeSession, sid)
}

// loginToken is the login form's token. It reuses the request's nonce
// cookie, so that several open login forms all work, and otherwise sets a
// new one.
func (s *Server) loginToken(c echo.Context) string {
	req := c.Request()
	nonce := s.csrf.nonce(req)
	if nonce == "" {
		b := make([]byte, csrfNonceBytes)
		_, _ = rand.Read(b) // never fails (crypto/rand docs)
		nonce = base64.RawURLEncoding.EncodeToString(b)
		secure := s.csrf.secure(req)
		c.SetCookie(&http.Cookie{
			Name:     nonceCookieName(secure),
			Value:    nonce,
			Path:     "/", // and no Domain: both required of a __Host- cookie
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteStrictMode,
		})
	}
	return s.csrf.token(purposeLogin, nonce)
}
