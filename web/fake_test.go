package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

// Test users. Zoë has 25 orders (2 pages), 6 invoices, 3 inquiries and 4
// interests; Bob has nothing.
var (
	zoeID = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	bobID = uuid.MustParse("22222222-2222-4222-8222-222222222222")
)

const (
	zoeEmail    = "zoe@example.com"
	zoePassword = "zoe-secret"
	zoeName     = "Zoë Ångström"
	// The session the fake Authenticate puts on requests unless the test
	// says otherwise (X-Test-Session).
	currentSession = "sess-current"
	otherSession   = "sess-other"
	cookieName     = "pc_session"
	// testNonce is the login form's CSRF cookie that request.csrf sends.
	testNonce = "AAECAwQFBgcICQoLDA0ODw" // base64url of 16 bytes
)

// testCSRFKey is the CSRF key of every test server.
var testCSRFKey = []byte("web-test-csrf-key-0123456789abcdef")

// sessionToken is the CSRF token on the pages of session sid.
func sessionToken(sid string) string { return web.SessionCSRFToken(testCSRFKey, sid) }

// loginToken is the login form's token for testNonce.
var loginToken = web.LoginCSRFToken(testCSRFKey, testNonce)

// loginCookie is the login form's CSRF cookie, as GET /login sets it.
func loginCookie() *http.Cookie { return &http.Cookie{Name: web.CSRFCookieName, Value: testNonce} }

var day = time.Date(2026, time.January, 2, 10, 30, 0, 0, time.UTC)

func zoeProfile() *profile.Profile {
	p := &profile.Profile{
		Basic: profile.Basic{
			ID: zoeID, FirstName: "Zoë", LastName: "Ångström", Email: zoeEmail,
			Phone: "+49 30 1234567", AddressLine: "Großbeerenstraße 1", PostalCode: "10963",
			City: "Berlin", Country: "DE", MarketingPermission: true, Created: day,
		},
		Interests: []string{"cycling", "jazz", "küche", "books"},
	}
	for i := range 25 {
		p.Orders = append(p.Orders, profile.Order{
			ID: fmt.Sprintf("o%d", i+1), Number: fmt.Sprintf("ORD-%04d", i+1), Date: day,
			Status: "delivered", Total: profile.Money(14990 + i), Currency: "EUR", ItemCount: 3, ShippingCity: "Berlin",
		})
	}
	for i := range 6 {
		p.Invoices = append(p.Invoices, profile.Invoice{
			ID: fmt.Sprintf("i%d", i+1), Number: fmt.Sprintf("INV-%04d", i+1), Date: day,
			Amount: 5005, Currency: "EUR", Paid: i%2 == 0,
		})
	}
	for i := range 3 {
		p.Inquiries = append(p.Inquiries, profile.Inquiry{
			ID: fmt.Sprintf("q%d", i+1), Description: "Wo bleibt meine Bestellung?", Submitted: day,
			SubmitterEmail: zoeEmail, SubmitterName: zoeName, Closed: i == 0,
		})
	}
	return p
}

func bobProfile() *profile.Profile {
	return &profile.Profile{Basic: profile.Basic{ID: bobID, FirstName: "Bob", Email: "bob@example.com", Created: day}}
}

// fakeProfiles serves profiles from memory and records every query.
type fakeProfiles struct {
	mu        sync.Mutex
	profiles  map[uuid.UUID]*profile.Profile
	passwords map[string]string // email -> password
	err       error             // returned by every call when set
	queries   []profile.Query
	refreshes int
	logins    int
}

func newFakeProfiles() *fakeProfiles {
	return &fakeProfiles{
		profiles:  map[uuid.UUID]*profile.Profile{zoeID: zoeProfile(), bobID: bobProfile()},
		passwords: map[string]string{zoeEmail: zoePassword, "bob@example.com": "bob-secret"},
	}
}

func (f *fakeProfiles) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeProfiles) Login(_ context.Context, email, password string) (uuid.UUID, profile.Fence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if f.err != nil {
		return uuid.Nil, "", f.err
	}
	want, ok := f.passwords[email]
	if !ok || want != password {
		return uuid.Nil, "", fmt.Errorf("fake: login: %w", profile.ErrInvalidCredentials)
	}
	for id, p := range f.profiles {
		if p.Basic.Email == email {
			return id, "", nil
		}
	}
	return uuid.Nil, "", fmt.Errorf("fake: login: %w", profile.ErrInvalidCredentials)
}

func (f *fakeProfiles) Read(_ context.Context, userID uuid.UUID, q profile.Query) (profile.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, copyQuery(q))
	if f.err != nil {
		return profile.View{}, f.err
	}
	p, ok := f.profiles[userID]
	if !ok {
		return profile.View{}, fmt.Errorf("fake: read: %w", profile.ErrNotFound)
	}
	var v profile.View
	if q.Basic {
		v.Basic = p.Basic
	}
	if q.Interests {
		v.Interests = append([]string(nil), p.Interests...)
	}
	var err error
	if v.Orders, err = window(p.Orders, q.Orders); err != nil {
		return profile.View{}, err
	}
	if v.Invoices, err = window(p.Invoices, q.Invoices); err != nil {
		return profile.View{}, err
	}
	if v.Inquiries, err = window(p.Inquiries, q.Inquiries); err != nil {
		return profile.View{}, err
	}
	return v, nil
}

func window[T any](all []T, p *profile.Page) (profile.Slice[T], error) {
	if p == nil {
		return profile.Slice[T]{}, nil
	}
	if err := p.Validate(); err != nil {
		return profile.Slice[T]{}, err
	}
	s := profile.Slice[T]{Total: len(all)}
	if p.Offset < len(all) {
		s.Items = all[p.Offset:min(len(all), p.Offset+p.Limit)]
	}
	return s, nil
}

func copyQuery(q profile.Query) profile.Query {
	cp := func(p *profile.Page) *profile.Page {
		if p == nil {
			return nil
		}
		c := *p
		return &c
	}
	return profile.Query{Basic: q.Basic, Interests: q.Interests, Orders: cp(q.Orders), Invoices: cp(q.Invoices), Inquiries: cp(q.Inquiries)}
}

func (f *fakeProfiles) lastQueries() []profile.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]profile.Query(nil), f.queries...)
}

func (f *fakeProfiles) Refresh(context.Context, uuid.UUID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.refreshes++
	return nil
}

// fakeSessions keeps sessions in memory; its cookie is a plain token.
type fakeSessions struct {
	mu        sync.Mutex
	sessions  map[uuid.UUID][]profile.Session
	err       error
	issued    int
	userAgent string // of the last Issue
}

func newFakeSessions() *fakeSessions {
	return &fakeSessions{sessions: map[uuid.UUID][]profile.Session{
		zoeID: {
			{ID: currentSession, UserID: zoeID, Created: day, LastSeen: day.Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"},
			{ID: otherSession, UserID: zoeID, Created: day, LastSeen: day, UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"},
		},
	}}
}

func (f *fakeSessions) Issue(_ context.Context, userID uuid.UUID, _ profile.Fence, userAgent string) (auth.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return auth.Issued{}, f.err
	}
	f.issued++
	f.userAgent = userAgent
	id := fmt.Sprintf("sess-new-%d", f.issued)
	f.sessions[userID] = append(f.sessions[userID], profile.Session{ID: id, UserID: userID, Created: day, LastSeen: day, UserAgent: userAgent})
	return auth.Issued{Token: "token-" + id, SessionID: id, ExpiresAt: day.Add(12 * time.Hour)}, nil
}

func (f *fakeSessions) SetCookie(c echo.Context, t auth.Issued) {
	c.SetCookie(&http.Cookie{Name: cookieName, Value: t.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (f *fakeSessions) ClearCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: cookieName, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (f *fakeSessions) Revoke(_ context.Context, userID uuid.UUID, sessionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	list := f.sessions[userID]
	for i, s := range list {
		if s.ID == sessionID {
			f.sessions[userID] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeSessions) RevokeAll(_ context.Context, userID uuid.UUID) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	n := len(f.sessions[userID])
	delete(f.sessions, userID)
	return n, nil
}

func (f *fakeSessions) Sessions(_ context.Context, userID uuid.UUID) ([]profile.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return append([]profile.Session(nil), f.sessions[userID]...), nil
}

func (f *fakeSessions) ids(userID uuid.UUID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.sessions[userID] {
		ids = append(ids, s.ID)
	}
	return ids
}

// fakeData is the per-session key/value store.
type fakeData struct {
	mu     sync.Mutex
	values map[string][]byte
	err    error
	budget int // bytes of keys and values per session; 0: none
}

func newFakeData() *fakeData { return &fakeData{values: map[string][]byte{}} }

func dataKey(userID uuid.UUID, sessionID, key string) string {
	return userID.String() + "\x00" + sessionID + "\x00" + key
}

func (f *fakeData) GetData(_ context.Context, userID uuid.UUID, sessionID, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.values[dataKey(userID, sessionID, key)]
	if !ok {
		return nil, fmt.Errorf("fake: get data: %w", profile.ErrNotFound)
	}
	return v, nil
}

func (f *fakeData) PutData(_ context.Context, userID uuid.UUID, sessionID, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := dataKey(userID, sessionID, key)
	if _, ok := f.values[k]; !ok && f.count(userID, sessionID) >= profile.MaxDataKeys {
		return fmt.Errorf("fake: put data: %w", profile.ErrDataFull)
	}
	if f.budget > 0 {
		total := len(key) + len(value)
		prefix := dataKey(userID, sessionID, "")
		for fk, v := range f.values {
			if other, ok := strings.CutPrefix(fk, prefix); ok && fk != k {
				total += len(other) + len(v)
			}
		}
		if total > f.budget {
			return fmt.Errorf("fake: put data: %w", &profile.DataBudgetError{Budget: f.budget})
		}
	}
	f.values[k] = append([]byte(nil), value...)
	return nil
}

func (f *fakeData) count(userID uuid.UUID, sessionID string) int {
	prefix := dataKey(userID, sessionID, "")
	n := 0
	for k := range f.values {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeData) DeleteData(_ context.Context, userID uuid.UUID, sessionID, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.values, dataKey(userID, sessionID, key))
	return nil
}

// fakeLimiter is a web.Limiter in memory: burst attempts per key, no
// refill; a refused attempt waits wait. (Production budgets live in Redis:
// redisrepo.Limiter.)
type fakeLimiter struct {
	mu      sync.Mutex
	burst   int
	wait    time.Duration
	err     error // returned by every call when set
	used    map[string]int
	refunds int
}

func newFakeLimiter(burst int) *fakeLimiter {
	return &fakeLimiter{burst: burst, wait: 1500 * time.Millisecond, used: map[string]int{}}
}

func (f *fakeLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, 0, f.err
	}
	if f.used[key] >= f.burst {
		return false, f.wait, nil
	}
	f.used[key]++
	return true, 0, nil
}

func (f *fakeLimiter) Refund(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.refunds++
	if f.used[key] > 0 {
		f.used[key]--
	}
	return nil
}

func (f *fakeLimiter) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Headers understood by fakeAuthenticate.
const (
	hdrUser      = "X-Test-User"
	hdrSession   = "X-Test-Session"
	hdrAuthError = "X-Test-Auth-Error" // "unavailable": the session store is down
)

// fakeAuthenticate stands in for auth.Manager.Middleware: the header
// X-Test-User carries the user id, X-Test-Session the session id.
func fakeAuthenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Header.Get(hdrAuthError) == "unavailable" {
			return fmt.Errorf("fake auth: %w", profile.ErrUnavailable)
		}
		id, err := uuid.Parse(c.Request().Header.Get(hdrUser))
		if err != nil {
			return fmt.Errorf("fake auth: %w", auth.ErrUnauthenticated)
		}
		sid := c.Request().Header.Get(hdrSession)
		if sid == "" {
			sid = currentSession
		}
		auth.WithIdentity(c, id, sid)
		return next(c)
	}
}

// testEnv is a web.Server on fakes.
type testEnv struct {
	tb        testing.TB
	handler   http.Handler
	server    *web.Server
	profiles  *fakeProfiles
	sessions  *fakeSessions
	data      *fakeData
	byAddress *fakeLimiter // the login limiters, generous unless a mod replaces them
	byAccount *fakeLimiter
	logs      *syncbuf.Buffer
}

func newTestEnv(tb testing.TB, mods ...func(*web.Config)) *testEnv {
	tb.Helper()
	env := &testEnv{tb: tb, profiles: newFakeProfiles(), sessions: newFakeSessions(), data: newFakeData(), logs: &syncbuf.Buffer{},
		byAddress: newFakeLimiter(1 << 30), byAccount: newFakeLimiter(1 << 30)}
	cfg := web.Config{
		Profiles:       env.profiles,
		Sessions:       env.sessions,
		Data:           env.data,
		Authenticate:   fakeAuthenticate,
		CSRFKey:        testCSRFKey,
		LoginByAddress: env.byAddress,
		LoginByAccount: env.byAccount,
		Logger:         slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mods {
		m(&cfg)
	}
	// A mod may have put in limiters of its own: the env reports on those.
	if l, ok := cfg.LoginByAddress.(*fakeLimiter); ok {
		env.byAddress = l
	}
	if l, ok := cfg.LoginByAccount.(*fakeLimiter); ok {
		env.byAccount = l
	}
	s, err := web.New(cfg)
	if err != nil {
		tb.Fatalf("web.New: %v", err)
	}
	env.server = s
	// Every exchange is held to docs/openapi.yaml; the fake authentication
	// (X-Test-User) is no documented credential, so only their presence goes
	// unchecked.
	env.handler = openapitest.Handler(tb, s.Handler(), openapitest.Options{})
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("server log:\n%s", env.logs.String())
		}
	})
	return env
}

// holdTo re-wraps the handler with other openapitest options, for tests
// that inject errors or probe input the document rejects.
func (e *testEnv) holdTo(opt openapitest.Options) {
	e.handler = openapitest.Handler(e.tb, e.server.Handler(), opt)
}

// request describes one test request.
type request struct {
	method string
	path   string
	user   uuid.UUID // signed in as (fake auth) unless uuid.Nil
	header map[string]string
	body   string
	// form, when set, is sent url-encoded; with csrf it also gets _csrf.
	form url.Values
	// csrf adds the token a browser that loaded our page would send (form
	// field, else header): the session's when signed in (user set), else
	// the login form's, with its cookie.
	csrf bool
}

// token is the CSRF token request.csrf sends.
func (r request) token() string {
	if r.user == uuid.Nil {
		return loginToken
	}
	if sid := r.header[hdrSession]; sid != "" {
		return sessionToken(sid)
	}
	return sessionToken(currentSession)
}

func (e *testEnv) do(tb testing.TB, r request) *httptest.ResponseRecorder {
	tb.Helper()
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader = strings.NewReader(r.body)
	form := r.form
	if form != nil {
		if r.csrf {
			form = cloneValues(form)
			form.Set("_csrf", r.token())
		}
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, r.path, body)
	if form != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	}
	if r.user != uuid.Nil {
		req.Header.Set(hdrUser, r.user.String())
	}
	if r.csrf {
		if r.user == uuid.Nil {
			req.AddCookie(loginCookie())
		}
		if form == nil {
			req.Header.Set("X-CSRF-Token", r.token())
		}
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// cookie returns the Set-Cookie of name, or nil.
func cookie(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// errorBody decodes {"error": "..."}; it fails the test unless the body is
// exactly that shape.
func errorBody(tb testing.TB, rec *httptest.ResponseRecorder) string {
	tb.Helper()
	if got, want := rec.Header().Get(echo.HeaderContentType), echo.MIMEApplicationJSON; !strings.HasPrefix(got, want) {
		tb.Fatalf("Content-Type = %q, want %q; body %s", got, want, rec.Body)
	}
	var e map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		tb.Fatalf("error body %q: %v", rec.Body, err)
	}
	msg, ok := e["error"].(string)
	if !ok || len(e) != 1 || msg == "" {
		tb.Fatalf("error body = %s, want {\"error\": \"...\"}", rec.Body)
	}
	return msg
}

var errBoom = errors.New("redis: dial tcp 10.9.8.7:6379: secret internal detail")
